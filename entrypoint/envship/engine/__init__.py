"""The deploy engine: everything between a rendering and a healthy cluster.

- session: one connected cluster session for a rendering: discovery, live state, the ownership survey,
  ordered server-side apply, prune, release records (what deploy and plan share);
- deploy: one deploy start to end (lock, ownership checks, apply, wait, prune, record, rollback);
- rollout: waiting until applied objects are healthy, watch-based, failing fast;
- lock: the deploy lock, a coordination.k8s.io Lease with client-go's leader-election semantics;
- images: pinning --image to a digest the registry has.

It composes the adapters (kube, registry, console) with the core's pure rules (ownership, plan, health,
workloads); commands build it from their options.
"""
