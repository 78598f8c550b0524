//! The query API against the real database: each test in a schema of its own, its rows written
//! through `read-models` as the projectors write them.

mod consistency;
mod console;
mod helpers;
mod products;
