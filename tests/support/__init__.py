"""Test support: paths, the shared end-to-end rig, fakes and factories."""
