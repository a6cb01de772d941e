"""Device drivers, one subpackage per transport; each a pure codec plus its I/O."""
