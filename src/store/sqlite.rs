//! Placeholder: the Postgres adapter is being written.
