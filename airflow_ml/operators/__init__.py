"""Operators of the provider: thin adapters that read arguments, call the core and push small XComs."""
