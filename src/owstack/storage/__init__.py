"""owstack.storage"""
