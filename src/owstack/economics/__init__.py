"""owstack.economics"""
