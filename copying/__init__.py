"""copying"""
