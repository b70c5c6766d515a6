//! The event bus against the real PostgreSQL and RabbitMQ: each test has its own database,
//! exchange and queues (and, where it closes connections, its own virtual host). And Redis
//! over TLS, against a redis-server of its own, and a rotated database password, against a
//! PostgreSQL of its own that checks passwords.

mod consumer;
mod db_password;
mod helpers;
mod outbox;
mod redis_tls;
