"""Post-training quantization of float models (DESIGN.md section 8)."""
