"""Build hosts and project VMs: inventory, placement, warm/idle state, and the channels to them."""
