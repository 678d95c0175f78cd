"""vector_io"""
