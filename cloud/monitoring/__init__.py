"""Operations monitoring: the Prometheus `/metrics` exposition of a cloud process."""
