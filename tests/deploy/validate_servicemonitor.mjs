// Validates ServiceMonitor documents (JSON lines on stdin) against the Prometheus operator's schema, as
// compiled into @kubernetes-models/prometheus-operator. Prints "ok" per valid document, or the errors and
// exits 1. Used by test_helm.py: kubernetes-validate knows only Kubernetes' own kinds.
import { createInterface } from "node:readline";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

let failed = false;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  try {
    new ServiceMonitor(JSON.parse(line)).validate();
    console.log("ok");
  } catch (error) {
    failed = true;
    console.log(`invalid: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
