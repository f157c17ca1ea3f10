"""owstack.compliance"""
