"""owstack.backends"""
