"""The administration API, reachable only from the networks in PLI_ADMIN_NETWORKS."""
