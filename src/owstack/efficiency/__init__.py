"""owstack.efficiency"""
