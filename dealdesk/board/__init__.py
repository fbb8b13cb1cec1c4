"""The pipeline board: one pipeline's deals in stage columns, moved by drag and drop."""
