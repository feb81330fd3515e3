//! One module per page; each page's regions that refresh on their own are components of it.

pub mod dashboard;
pub mod error;
pub mod login;
pub mod nodes;
pub mod search;
