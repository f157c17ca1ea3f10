"""owstack.pipeline"""
