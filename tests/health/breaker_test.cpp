#include <string>

#include <gtest/gtest.h>

#include "fixture.hpp"

namespace gatewayz::health::test {
namespace {

constexpr std::size_t alpha = 0;
constexpr std::size_t beta = 1;

double state_gauge(harness& h, std::string_view provider, std::string_view state) {
  return h.gauge(h.metrics.circuit_breaker_state, {provider, state});
}

double transitions(harness& h, std::string_view provider, std::string_view from, std::string_view to) {
  return h.counter(h.metrics.circuit_breaker_transitions, {provider, from, to});
}

void open_alpha(harness& h) {
  for (int i = 0; i < 5; ++i) h.attempt(alpha, outcome::failure);
  ASSERT_EQ(h.mon->state(alpha), breaker_state::open);
}

TEST(Breaker, StartsClosedWithStateGauges) {
  harness h;
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);
  EXPECT_EQ(state_gauge(h, "alpha", "closed"), 1);
  EXPECT_EQ(state_gauge(h, "alpha", "open"), 0);
  EXPECT_EQ(state_gauge(h, "alpha", "half_open"), 0);
  const admission a = h.mon->admit(2, alpha);
  EXPECT_TRUE(a);
  EXPECT_FALSE(a.trial);
  EXPECT_EQ(a.provider, alpha);
}

TEST(Breaker, OpensAfterConsecutiveFailures) {
  harness h;
  for (int i = 0; i < 4; ++i) h.attempt(alpha, outcome::failure, 100ms, static_cast<std::size_t>(i % 4));
  h.attempt(alpha, outcome::success);  // breaks the streak
  for (int i = 0; i < 4; ++i) h.attempt(alpha, outcome::failure, 100ms, 1);
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);
  h.attempt(alpha, outcome::failure, 100ms, 3);
  EXPECT_EQ(h.mon->state(alpha), breaker_state::open);
  EXPECT_EQ(h.mon->state(beta), breaker_state::closed);
  ASSERT_EQ(h.transitions.size(), 1u);
  EXPECT_EQ(h.transitions[0].provider_name, "alpha");
  EXPECT_EQ(h.transitions[0].from, breaker_state::closed);
  EXPECT_EQ(h.transitions[0].to, breaker_state::open);
  EXPECT_EQ(h.transitions[0].reason, "consecutive_failures");
}

TEST(Breaker, ClientErrorsAndCancellationsNeitherCountNorBreakTheStreak) {
  harness h;
  for (int i = 0; i < 20; ++i) h.attempt(alpha, outcome::client_error);
  for (int i = 0; i < 4; ++i) {
    h.attempt(alpha, outcome::failure);
    h.attempt(alpha, outcome::client_error);
    h.attempt(alpha, outcome::cancelled);
  }
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);
  h.attempt(alpha, outcome::failure);
  EXPECT_EQ(h.mon->state(alpha), breaker_state::open);
}

TEST(Breaker, ErrorRateOpensOnlyFromMinRequests) {
  options o = two_providers();
  o.breaker.failure_threshold = 100;  // isolate the error-rate rule
  harness h(o);
  // S F S F ... : 50 % errors, never two failures in a row.
  for (int i = 0; i < 4; ++i) {
    h.attempt(alpha, outcome::success, 100ms, static_cast<std::size_t>(i));
    h.attempt(alpha, outcome::failure, 100ms, static_cast<std::size_t>(3 - i));
    h.clock.advance(20s);
  }
  h.attempt(alpha, outcome::success);
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);  // 9 requests < min_requests
  h.attempt(alpha, outcome::failure, 100ms, 2);           // 10 requests, 5 failures
  EXPECT_EQ(h.mon->state(alpha), breaker_state::open);
  ASSERT_EQ(h.transitions.size(), 1u);
  EXPECT_EQ(h.transitions[0].reason, "error_rate");
}

TEST(Breaker, ErrorRateBelowThresholdStaysClosed) {
  options o = two_providers();
  o.breaker.failure_threshold = 100;
  harness h(o);
  for (int i = 0; i < 60; ++i) h.attempt(alpha, i % 3 == 0 ? outcome::failure : outcome::success);
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);
}

TEST(Breaker, OpenRejectsAndCountsRejectionsPerShard) {
  harness h;
  open_alpha(h);
  EXPECT_FALSE(h.mon->admit(1, alpha));
  EXPECT_FALSE(h.mon->admit(3, alpha));
  EXPECT_FALSE(h.mon->admit(3, alpha));
  EXPECT_TRUE(h.mon->admit(3, beta));
  EXPECT_EQ(h.counter(h.metrics.circuit_breaker_rejected, {"alpha"}), 3);
  EXPECT_EQ(h.counter(h.metrics.circuit_breaker_rejected, {"beta"}), 0);
  const std::string text = h.reg.render_text();
  EXPECT_NE(text.find("circuit_breaker_rejected_requests_total{provider=\"alpha\"} 3"), std::string::npos) << text;
}

TEST(Breaker, CoolDownThenHalfOpenTrialsUpToTheLimit) {
  harness h;
  open_alpha(h);
  h.clock.advance(59s);
  EXPECT_FALSE(h.mon->admit(0, alpha));
  h.clock.advance(1s);
  const admission first = h.mon->admit(0, alpha);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first.trial);
  EXPECT_EQ(h.mon->state(alpha), breaker_state::half_open);
  const admission second = h.mon->admit(1, alpha);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second.trial);
  EXPECT_FALSE(h.mon->admit(2, alpha));  // two trials in flight
  EXPECT_EQ(transitions(h, "alpha", "open", "half_open"), 1);
  EXPECT_EQ(state_gauge(h, "alpha", "half_open"), 1);
  EXPECT_EQ(state_gauge(h, "alpha", "open"), 0);
}

TEST(Breaker, AllTrialsSucceedingCloseAndResetTheBackoff) {
  harness h;
  open_alpha(h);
  h.clock.advance(60s);
  const admission t1 = h.mon->admit(0, alpha);
  const admission t2 = h.mon->admit(1, alpha);
  h.mon->record(0, t1, {0, outcome::success, 1s, h.clock.steady()});
  EXPECT_EQ(h.mon->state(alpha), breaker_state::half_open);
  // One trial done, one in flight: still only two at a time in total.
  EXPECT_FALSE(h.mon->admit(0, alpha));
  h.mon->record(1, t2, {0, outcome::success, 1s, h.clock.steady()});
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);
  EXPECT_EQ(h.transitions.back().reason, "trials_succeeded");
  EXPECT_EQ(transitions(h, "alpha", "half_open", "closed"), 1);
  EXPECT_EQ(state_gauge(h, "alpha", "closed"), 1);
  EXPECT_EQ(state_gauge(h, "alpha", "half_open"), 0);
  // The failures before the close do not count towards the error rate now:
  // a single new failure keeps it closed.
  h.clock.advance(1s);
  h.attempt(alpha, outcome::failure);
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);
  // Backoff reset: the next opening lasts open_s again.
  for (int i = 0; i < 4; ++i) h.attempt(alpha, outcome::failure);
  ASSERT_EQ(h.mon->state(alpha), breaker_state::open);
  EXPECT_EQ(h.mon->breakers()[alpha].open_duration_s, 60);
  h.clock.advance(60s);
  EXPECT_TRUE(h.mon->admit(0, alpha));
}

TEST(Breaker, TrialFailureReopensWithDoublingCooldownUpToTheCap) {
  harness h;
  open_alpha(h);
  double expected = 60;
  for (const double next : {120.0, 240.0, 480.0, 600.0, 600.0}) {
    EXPECT_EQ(h.mon->breakers()[alpha].open_duration_s, expected);
    h.clock.advance(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(expected - 1)));
    EXPECT_FALSE(h.mon->admit(0, alpha)) << expected;
    h.clock.advance(1s);
    const admission trial = h.mon->admit(0, alpha);
    ASSERT_TRUE(trial.trial) << expected;
    h.mon->record(0, trial, {0, outcome::failure, 1s, h.clock.steady()});
    ASSERT_EQ(h.mon->state(alpha), breaker_state::open);
    EXPECT_EQ(h.transitions.back().reason, "trial_failed");
    expected = next;
  }
  EXPECT_EQ(h.mon->breakers()[alpha].reopen_count, 5u);
  EXPECT_EQ(transitions(h, "alpha", "half_open", "open"), 5);
  EXPECT_EQ(transitions(h, "alpha", "closed", "open"), 1);
}

TEST(Breaker, CancelledTrialFreesItsSlot) {
  harness h;
  open_alpha(h);
  h.clock.advance(60s);
  const admission t1 = h.mon->admit(0, alpha);
  const admission t2 = h.mon->admit(0, alpha);
  ASSERT_TRUE(t1.trial && t2.trial);
  EXPECT_FALSE(h.mon->admit(0, alpha));
  h.mon->record(0, t1, {0, outcome::cancelled, 1s, h.clock.steady()});
  const admission t3 = h.mon->admit(0, alpha);
  ASSERT_TRUE(t3.trial);
  h.mon->record(0, t2, {0, outcome::success, 1s, h.clock.steady()});
  h.mon->record(0, t3, {0, outcome::success, 1s, h.clock.steady()});
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);
}

TEST(Breaker, WantsTrialExactlyWhenAdmitWouldGrantOne) {
  harness h;
  EXPECT_FALSE(h.mon->wants_trial(alpha));  // closed
  open_alpha(h);
  h.clock.advance(59s);
  EXPECT_FALSE(h.mon->wants_trial(alpha));  // cooling down
  h.clock.advance(1s);
  EXPECT_TRUE(h.mon->wants_trial(alpha));  // cool-down over, still open until the next admit
  EXPECT_EQ(h.mon->state(alpha), breaker_state::open);
  const admission t1 = h.mon->admit(0, alpha);
  EXPECT_TRUE(h.mon->wants_trial(alpha));  // one of two slots free
  const admission t2 = h.mon->admit(1, alpha);
  ASSERT_TRUE(t1.trial && t2.trial);
  EXPECT_FALSE(h.mon->wants_trial(alpha));  // both slots taken
  h.mon->record(1, t2, {0, outcome::cancelled, 1s, h.clock.steady()});
  EXPECT_TRUE(h.mon->wants_trial(alpha));  // a cancelled trial returns its slot
  const admission t3 = h.mon->admit(1, alpha);
  ASSERT_TRUE(t3.trial);
  EXPECT_FALSE(h.mon->wants_trial(alpha));
  h.clock.advance(120s);  // trial_timeout_s: the unreported trials are written off at the next admit
  EXPECT_TRUE(h.mon->wants_trial(alpha));
  EXPECT_TRUE(h.mon->admit(0, alpha).trial);
  EXPECT_FALSE(h.mon->wants_trial(beta));
}

TEST(Breaker, AttemptGuardReportsCancellationWhenDestroyedUnfinished) {
  harness h;
  open_alpha(h);
  h.clock.advance(60s);
  {
    attempt_guard g1(*h.mon, 0, alpha);
    attempt_guard g2(*h.mon, 1, alpha);
    EXPECT_TRUE(g1.admitted() && g2.admitted());
    attempt_guard g3(*h.mon, 2, alpha);
    EXPECT_FALSE(g3.admitted());
  }  // the client went away: both trials are released
  attempt_guard g4(*h.mon, 0, alpha);
  attempt_guard g5(*h.mon, 0, alpha);
  ASSERT_TRUE(g4.admitted() && g5.admitted());
  g4.finish({0, outcome::success, 1s, h.clock.steady()});
  g5.finish({0, outcome::success, 1s, h.clock.steady()});
  g5.finish({0, outcome::failure, 1s, h.clock.steady()});  // recorded once only
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);
}

TEST(Breaker, UnreportedTrialsExpireAndTheirLateReportsAreIgnored) {
  harness h;
  open_alpha(h);
  h.clock.advance(60s);
  const admission lost1 = h.mon->admit(0, alpha);
  const admission lost2 = h.mon->admit(0, alpha);
  ASSERT_TRUE(lost1.trial && lost2.trial);
  h.clock.advance(119s);
  h.mon->run_once();
  EXPECT_FALSE(h.mon->admit(0, alpha));
  h.clock.advance(1s);
  const admission fresh = h.mon->admit(0, alpha);
  ASSERT_TRUE(fresh.trial);
  // A report of a written-off trial changes nothing, not even a failure.
  h.mon->record(0, lost1, {0, outcome::failure, 1s, h.clock.steady()});
  EXPECT_EQ(h.mon->state(alpha), breaker_state::half_open);
  const admission fresh2 = h.mon->admit(0, alpha);
  ASSERT_TRUE(fresh2.trial);
  h.mon->record(0, fresh, {0, outcome::success, 1s, h.clock.steady()});
  h.mon->record(0, fresh2, {0, outcome::success, 1s, h.clock.steady()});
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);
}

TEST(Breaker, ResultsOfAttemptsAdmittedBeforeOpeningDoNotMoveIt) {
  harness h;
  const admission early = h.mon->admit(0, alpha);
  open_alpha(h);
  h.mon->record(0, early, {0, outcome::failure, 1s, h.clock.steady()});
  EXPECT_EQ(h.mon->state(alpha), breaker_state::open);
  h.clock.advance(60s);
  const admission trial = h.mon->admit(0, alpha);
  ASSERT_TRUE(trial.trial);
  h.mon->record(0, early, {0, outcome::failure, 1s, h.clock.steady()});  // not a trial
  EXPECT_EQ(h.mon->state(alpha), breaker_state::half_open);
  EXPECT_EQ(h.transitions.size(), 2u);
}

TEST(Breaker, MonitorTurnsAnExpiredOpenBreakerHalfOpen) {
  harness h;
  open_alpha(h);
  h.clock.advance(60s);
  h.mon->run_once();
  EXPECT_EQ(h.mon->state(alpha), breaker_state::half_open);
  EXPECT_EQ(state_gauge(h, "alpha", "half_open"), 1);
  EXPECT_EQ(h.mon->current()->providers[alpha].breaker, breaker_state::half_open);
}

TEST(Breaker, ManualResetClosesAndForgetsBackoff) {
  harness h;
  open_alpha(h);
  h.clock.advance(60s);
  const admission trial = h.mon->admit(0, alpha);
  h.mon->record(0, trial, {0, outcome::failure, 1s, h.clock.steady()});
  EXPECT_EQ(h.mon->breakers()[alpha].open_duration_s, 120);
  EXPECT_TRUE(h.mon->reset(alpha));
  EXPECT_FALSE(h.mon->reset(7));
  EXPECT_EQ(h.mon->state(alpha), breaker_state::closed);
  EXPECT_EQ(h.transitions.back().reason, "manual_reset");
  EXPECT_EQ(h.transitions.back().from, breaker_state::open);
  EXPECT_EQ(transitions(h, "alpha", "open", "closed"), 1);
  EXPECT_EQ(state_gauge(h, "alpha", "closed"), 1);
  EXPECT_EQ(state_gauge(h, "alpha", "open"), 0);
  EXPECT_TRUE(h.mon->admit(0, alpha));
  for (int i = 0; i < 5; ++i) h.attempt(alpha, outcome::failure);
  EXPECT_EQ(h.mon->breakers()[alpha].open_duration_s, 60);
}

TEST(Breaker, ListingDescribesEachBreaker) {
  harness h;
  open_alpha(h);
  h.clock.advance(10s);
  const auto list = h.mon->breakers();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].provider, "alpha");
  EXPECT_EQ(list[0].state, breaker_state::open);
  ASSERT_TRUE(list[0].retry_at.has_value());
  EXPECT_EQ(*list[0].retry_at, h.clock.wall() + 50s);
  ASSERT_TRUE(list[0].last_transition_at.has_value());
  EXPECT_EQ(*list[0].last_transition_at, h.clock.wall() - 10s);
  EXPECT_EQ(list[1].provider, "beta");
  EXPECT_EQ(list[1].state, breaker_state::closed);
  EXPECT_FALSE(list[1].retry_at.has_value());
  EXPECT_FALSE(list[1].last_transition_at.has_value());
}

TEST(Breaker, ExpositionShowsStatesAndTransitions) {
  harness h;
  open_alpha(h);
  const std::string text = h.reg.render_text();
  for (const char* line : {
           "gatewayz_circuit_breaker_state{provider=\"alpha\",state=\"closed\"} 0",
           "gatewayz_circuit_breaker_state{provider=\"alpha\",state=\"open\"} 1",
           "gatewayz_circuit_breaker_state{provider=\"alpha\",state=\"half_open\"} 0",
           "gatewayz_circuit_breaker_state{provider=\"beta\",state=\"closed\"} 1",
           "circuit_breaker_state_transitions_total{provider=\"alpha\",from_state=\"closed\",to_state=\"open\"} 1",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

}  // namespace
}  // namespace gatewayz::health::test
