"""Parts of the gateway benchmark (bench/gateway_bench.py): upstream, contenders, wrk, load, report."""
