//! The matching engine, free of I/O: who should clean what. Today its exact solver; the cost
//! model, the constraints and the stable mode come next (issue 13).

pub mod solver;
