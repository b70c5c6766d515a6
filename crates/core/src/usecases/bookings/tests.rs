use super::*;
use crate::{
    domain::{booking::tests::home, cleaner::Service},
    upstream::{EstimateFuture, ModelEstimate},
};

/// A model that always gives the same answer.
struct Answers(Result<ModelEstimate, String>);

impl DurationModel for Answers {
    fn estimate<'a>(&'a self, _job: Job<'a>) -> EstimateFuture<'a> {
        let answer = self.0.clone();
        Box::pin(async move { answer })
    }
}

#[tokio::test]
async fn the_models_bookable_answer_is_used_and_anything_else_falls_back() {
    let home = home(70, false);
    let job = Job {
        service: Service::Standard,
        home: &home,
        cleaner_id: None,
    };
    let rule = (
        estimate_duration_min(Service::Standard, &home),
        EstimatedBy::RuleOfThumb,
    );
    let answer = |minutes, model_version| {
        Answers(Ok(ModelEstimate {
            minutes,
            model_version,
        }))
    };
    assert_eq!(
        estimate(&answer(105, 3), job).await,
        (105, EstimatedBy::Model { version: 3 })
    );
    for broken in [answer(7, 3), answer(2_000, 3), answer(105, 0)] {
        assert_eq!(estimate(&broken, job).await, rule);
    }
    let down = Answers(Err("search answered Unavailable".to_owned()));
    assert_eq!(estimate(&down, job).await, rule);
}
