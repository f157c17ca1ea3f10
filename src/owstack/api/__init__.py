"""owstack.api"""
