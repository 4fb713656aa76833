//! AutoScaler CRD (placeholder).
