//! Helpers shared by the media tests.

pub mod fake_sfu;
