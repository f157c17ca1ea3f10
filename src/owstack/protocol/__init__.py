"""owstack.protocol"""
