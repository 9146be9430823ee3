//! The steps a random sequence is made of, and how proptest draws them. A step names
//! customers, cases, staff and earlier writes by index into what the sequence has made
//! so far (modulo its length), so a shrunk sequence still means something.

use proptest::prelude::*;

/// One thing a caller does. Indexes wrap around what exists when the step runs; a step
/// with nothing to act on is skipped.
#[derive(Debug, Clone)]
pub enum Step {
    RegisterCustomer {
        name: Name,
        agent: Who,
    },
    UpdateCustomer {
        customer: usize,
        name: Name,
    },
    GradeCustomer {
        customer: usize,
        tier: i32,
        stars: u32,
    },
    AssignAgent {
        customer: usize,
        agent: Who,
    },
    RecordContact {
        customer: usize,
        at: When,
    },
    File {
        customer: usize,
        major: bool,
        respondent: Option<Who>,
        received: When,
    },
    AssignHandler {
        case: usize,
        handler: Who,
    },
    Act {
        case: usize,
        by: Actor,
        act: Act,
    },
    /// Every step of handling, in order, by the case's handler (h1 when none) and sp1:
    /// assign, contact, investigate, draft, sign, final reply, close.
    Handle {
        case: usize,
    },
    Callback {
        case: usize,
        outcome: i32,
        score: u32,
        at: When,
    },
    Archive {
        last_year: bool,
    },
    Forget {
        customer: usize,
    },
    RegisterStaff,
    /// A departure; with `race`, an assignment to the leaver sent at the same time.
    Depart {
        staff: Who,
        race: Option<Race>,
    },
    /// A rebuild of every projection from zero, racing the steps that follow.
    Rebuild,
    /// The `write`th accepted write sent again as it was.
    Retry {
        write: usize,
    },
    /// The `write`th accepted write's key with another body.
    ReuseKey {
        write: usize,
    },
    /// Reports and lists as of a stated time.
    Report {
        as_of: When,
    },
    Advance(Advance),
}

/// A name as a caller might send it.
#[derive(Debug, Clone, Copy)]
pub enum Name {
    Plain,
    Unicode,
    /// 200 kB of text.
    Huge,
    Empty,
}

/// A staff member: an index into the staff the sequence knows (departed ones too), or
/// someone unknown, or nobody.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    Staff(usize),
    Unknown,
    Empty,
}

/// Who acts on a case.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    /// The case's handler as the model last saw it (h1 when none).
    Handler,
    Supervisor,
    Director,
    Specialist,
    Agent,
    /// The staff member complained about (r1 when none).
    Respondent,
}

/// A step of handling a case.
#[derive(Debug, Clone, Copy)]
pub enum Act {
    Contact(When),
    Investigate,
    Draft,
    /// Capacity: 1 handler, 2 director, 3 committee (without a meeting record).
    Sign(i32),
    Reply {
        last: bool,
    },
    /// R-P9: the specialist records the implementation of the signed opinion.
    Implement,
    Close,
    Reopen,
    Escalate(i32),
    Recuse,
}

/// An assignment racing a departure.
#[derive(Debug, Clone, Copy)]
pub enum Race {
    Customer(usize),
    Case(usize),
}

/// A time a caller states, relative to the server's clock where it says so.
#[derive(Debug, Clone, Copy)]
pub enum When {
    Unset,
    Now,
    HoursAgo(u16),
    /// `now` plus the largest skew allowed: valid.
    AtSkew,
    /// One second past the allowed skew: refused.
    PastSkew,
    /// 2000-01-01T00:00:00Z, the floor: valid on its own.
    Floor,
    /// 1 January of a year outside the time domain (-1, 1999, 10000): refused.
    Year(i32),
    /// Raw seconds at the edges of the wire type: refused.
    Seconds(i64),
    /// Nanos outside 0..1e9 on a valid second: refused.
    Nanos(i32),
}

impl When {
    /// Whether DOMAIN.md R-T4 refuses this time whatever else holds.
    pub fn must_be_refused(self) -> bool {
        matches!(self, When::PastSkew | When::Year(_) | When::Seconds(_) | When::Nanos(_))
    }
}

/// A move of the server's clock, never backwards.
#[derive(Debug, Clone, Copy)]
pub enum Advance {
    Hours(u16),
    Days(u16),
    /// To two milliseconds before the next case year begins: the steps that follow
    /// straddle New Year.
    NewYearsEve,
}

fn index() -> impl Strategy<Value = usize> {
    0usize..16
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![6 => Just(Name::Plain), 2 => Just(Name::Unicode), 1 => Just(Name::Huge), 1 => Just(Name::Empty)]
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![8 => index().prop_map(Who::Staff), 1 => Just(Who::Unknown), 1 => Just(Who::Empty)]
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        4 => Just(When::Unset),
        2 => Just(When::Now),
        2 => (1u16..200).prop_map(When::HoursAgo),
        1 => Just(When::AtSkew),
        1 => Just(When::PastSkew),
        1 => Just(When::Floor),
        1 => prop_oneof![Just(-1), Just(1999), Just(10_000)].prop_map(When::Year),
        1 => prop_oneof![Just(i64::MAX), Just(i64::MIN), Just(253_402_300_800)].prop_map(When::Seconds),
        1 => prop_oneof![Just(-1), Just(1_000_000_000), Just(i32::MAX)].prop_map(When::Nanos),
    ]
}

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        8 => Just(Actor::Handler),
        2 => Just(Actor::Supervisor),
        1 => Just(Actor::Director),
        1 => Just(Actor::Specialist),
        1 => Just(Actor::Agent),
        1 => Just(Actor::Respondent),
    ]
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => when().prop_map(Act::Contact),
        3 => Just(Act::Investigate),
        3 => Just(Act::Draft),
        3 => (1i32..=3).prop_map(Act::Sign),
        3 => any::<bool>().prop_map(|last| Act::Reply { last }),
        2 => Just(Act::Implement),
        3 => Just(Act::Close),
        1 => Just(Act::Reopen),
        1 => (0i32..=3).prop_map(Act::Escalate),
        1 => Just(Act::Recuse),
    ]
}

fn advance() -> impl Strategy<Value = Advance> {
    prop_oneof![
        2 => (1u16..72).prop_map(Advance::Hours),
        1 => (1u16..40).prop_map(Advance::Days),
        1 => Just(Advance::NewYearsEve),
    ]
}

/// One step, weighted towards the commands that move cases along.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (name(), who()).prop_map(|(name, agent)| Step::RegisterCustomer { name, agent }),
        1 => (index(), name()).prop_map(|(customer, name)| Step::UpdateCustomer { customer, name }),
        1 => (index(), 0i32..=4, prop_oneof![0u32..=6, Just(u32::MAX)])
            .prop_map(|(customer, tier, stars)| Step::GradeCustomer { customer, tier, stars }),
        1 => (index(), who()).prop_map(|(customer, agent)| Step::AssignAgent { customer, agent }),
        1 => (index(), when()).prop_map(|(customer, at)| Step::RecordContact { customer, at }),
        5 => (index(), any::<bool>(), proptest::option::weighted(0.3, who()), when()).prop_map(
            |(customer, major, respondent, received)| Step::File {
                customer,
                major,
                respondent,
                received
            }
        ),
        3 => (index(), who()).prop_map(|(case, handler)| Step::AssignHandler { case, handler }),
        12 => (index(), actor(), act()).prop_map(|(case, by, act)| Step::Act { case, by, act }),
        3 => index().prop_map(|case| Step::Handle { case }),
        2 => (index(), 0i32..=3, 0u32..=6, when())
            .prop_map(|(case, outcome, score, at)| Step::Callback { case, outcome, score, at }),
        1 => any::<bool>().prop_map(|last_year| Step::Archive { last_year }),
        1 => index().prop_map(|customer| Step::Forget { customer }),
        1 => Just(Step::RegisterStaff),
        2 => (
            who(),
            proptest::option::weighted(
                0.7,
                prop_oneof![index().prop_map(Race::Customer), index().prop_map(Race::Case)]
            )
        )
            .prop_map(|(staff, race)| Step::Depart { staff, race }),
        1 => Just(Step::Rebuild),
        2 => index().prop_map(|write| Step::Retry { write }),
        2 => index().prop_map(|write| Step::ReuseKey { write }),
        1 => when().prop_map(|as_of| Step::Report { as_of }),
        2 => advance().prop_map(Step::Advance),
    ]
}
