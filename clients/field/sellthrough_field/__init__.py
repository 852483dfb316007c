"""Reference offline field client for Sellthrough: queue events on the device, sync them when online."""
