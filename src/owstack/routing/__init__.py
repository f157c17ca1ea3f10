"""owstack.routing"""
