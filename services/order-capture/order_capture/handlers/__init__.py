"""Accepting a posted batch: domain rules over what one adapter reads and stores."""
