//! The event bus against the real PostgreSQL and RabbitMQ: each test has its own database,
//! exchange and queues (and, where it closes connections, its own virtual host).

mod consumer;
mod helpers;
mod outbox;
mod replica;
