//! Background work: the scheduler that runs due jobs every `TANDEM_SCHEDULER_INTERVAL`. Every job
//! is safe when several processes run it at once.

pub mod delivery;
pub mod scheduler;
