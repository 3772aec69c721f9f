"""Pure renderers that hand the same agents to cluster engines: KubeAI `Model` manifests and
vLLM production-stack Helm values. No cluster access; the args come from `spec.vllm_args`."""
