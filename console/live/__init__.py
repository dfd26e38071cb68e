"""Live data in and out: the agents' consumer and the browsers' consumer."""
