"""owstack.tenancy"""
