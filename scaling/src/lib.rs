//! Pure HPA decision logic (placeholder until the scaling issue lands).
