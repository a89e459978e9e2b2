"""The domain's use cases. Each public function is one use case: plain values
in and out, and it owns its transaction (`db.transaction()`)."""
