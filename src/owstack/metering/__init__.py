"""owstack.metering"""
