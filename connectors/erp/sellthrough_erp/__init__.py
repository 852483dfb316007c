"""ERP connector: primary invoices from an ERP export into Sellthrough."""
