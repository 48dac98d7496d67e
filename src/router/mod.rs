//! The router: policy, admission, execution and measurement.

mod policy;

pub use policy::{
    BATCH_HEAVY, BATCH_UNDER_PRESSURE, choose_for_profile, choose_strategy, cost_rank,
};
