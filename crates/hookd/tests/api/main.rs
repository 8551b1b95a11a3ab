//! Integration tests: the real app on 127.0.0.1:0 with a fresh database per test, driven
//! through HTTP only. All modules compile into this one binary.

mod helpers;

mod access;
mod applications;
mod attempts;
mod auth;
mod bad_input;
mod browser;
mod catalog;
mod chaos;
mod cli;
mod cluster;
mod compat;
mod dashboard;
mod delivery;
mod destinations;
mod docs_truth;
mod durability;
mod egress;
mod endpoints;
mod engine;
mod event_types;
mod faults;
mod guide_examples;
mod idempotency;
mod lifecycle;
mod limits;
mod load;
mod messages;
mod metrics;
mod outage;
mod portal;
mod replay;
mod retention;
mod sandbox;
mod secrets;
mod sinks;
mod ssrf;
mod tokens;
mod tools;
mod web;
