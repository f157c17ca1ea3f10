"""owstack.security"""
