"""`expertconnect demo-data`: a believable marketplace (experts with skills, prices and weekly
hours, clients, meetings in every status with their payments, reviews, conversations) created
through the actions, so every rule of the schema and of the escrow holds. Owns the demo content:
names, bios, skills, scripts. Deterministic for a given start time (a fixed random seed).

The booking rules shape it. A request must start in the future, so every meeting does, the
completed ones included: their requesters marked them done early, which the rules allow (only
the expert must wait for the start). Each meeting has an hour of its own for both people and
fits the expert's weekly hours in their time zone; the hours are declared after the bookings,
so a meeting never depends on PostgreSQL and Python agreeing on a zone. Requests left pending
stay within meetings.max_open_requests per requester, and expire like any other (after
meetings.pending_ttl_hours) once a server runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import unicodedata
from collections import Counter
from zoneinfo import ZoneInfo

from expertconnect.actions import accounts, credits, meetings, messages
from expertconnect.actions.errors import InvalidField
from expertconnect.db.queries import availability as availability_q
from expertconnect.db.queries import credits as credits_q
from expertconnect.db.queries import skills as skills_q
from expertconnect.db.queries import users as users_q
from expertconnect.services import Services

# Every demo account's password, printed by the command and given in the README.
DEMO_PASSWORD = "demo-password-1"
EMAIL_DOMAIN = "example.com"  # reserved for examples (RFC 2606): no mail reaches anyone
SEED = 20240611

# ------------------------------------------------------------------------------- the content
# (skill, proficiency_level) in the expert's own category, or (skill, level, category).
Skill = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ExpertSpec:
    first_name: str
    last_name: str
    timezone: str
    category: str
    credits_per_hour: int  # 0: no price, the requester pays what they choose
    bio: str
    skills: tuple[Skill, ...]


@dataclasses.dataclass(frozen=True)
class ClientSpec:
    first_name: str
    last_name: str
    timezone: str
    bio: str


SD, CD, DS, DE = "Software Development", "Career Development", "Data Science", "Design"
BU, MK, FI, LA = "Business", "Marketing", "Finance", "Languages"

EXPERTS = (
    ExpertSpec("Amara", "Okafor", "Africa/Lagos", SD, 60,
               "Backend engineer for 11 years, the last five building payment systems in Go "
               "and Python for fintechs across West Africa. API design, code reviews and "
               "getting a service ready for production.",
               (("Go", "expert"), ("Python", "expert"), ("PostgreSQL", "advanced"))),
    ExpertSpec("Lukas", "Brandt", "Europe/Berlin", SD, 90,
               "Frontend architect with 14 years of TypeScript and React. I have led two large "
               "migrations off legacy frameworks and run accessibility audits.",
               (("TypeScript", "expert"), ("React", "expert"), ("Accessibility", "advanced", DE))),
    ExpertSpec("Priya", "Raman", "Asia/Kolkata", SD, 45,
               "Android developer for 9 years and mentor at a Bengaluru bootcamp. Happy to "
               "review your app's architecture or pair on a stubborn bug.",
               (("Kotlin", "expert"), ("Android", "expert"), ("Java", "advanced"))),
    ExpertSpec("Diego", "Fernández", "America/Mexico_City", SD, 0,
               "DevOps engineer and open-source maintainer (8 years): Kubernetes, Terraform and "
               "CI pipelines that do not wake you at night. Pay what the session was worth.",
               (("Kubernetes", "expert"), ("Terraform", "advanced"), ("Docker", "expert"))),
    ExpertSpec("Hannah", "Kim", "America/Los_Angeles", SD, 150,
               "Staff engineer, 15 years in distributed systems at Bay Area startups. "
               "Architecture reviews and system design interview practice.",
               (("System Design", "expert"), ("Rust", "advanced"),
                ("Interview Preparation", "advanced", CD))),
    ExpertSpec("Tomás", "Silva", "Europe/Lisbon", SD, 40,
               "Full-stack developer (7 years) building Django and Vue apps for small "
               "businesses. I help people ship their first web application.",
               (("Django", "expert"), ("Vue.js", "advanced"), ("JavaScript", "advanced"))),
    ExpertSpec("Mei", "Tanaka", "Asia/Tokyo", DS, 75,
               "Data scientist for 10 years on e-commerce recommendations. Machine learning "
               "from framing the problem to evaluating the model honestly.",
               (("Machine Learning", "expert"), ("Recommender Systems", "expert"),
                ("PyTorch", "advanced"))),
    ExpertSpec("Samuel", "Otieno", "Africa/Nairobi", DS, 50,
               "Analytics lead (8 years) in mobile money. SQL, dashboards and experiment design "
               "for product teams that want to measure what matters.",
               (("SQL", "expert"), ("A/B Testing", "advanced"), ("Tableau", "advanced"))),
    ExpertSpec("Sofia", "Rossi", "Europe/Rome", DS, 65,
               "Statistician for 12 years, now a data science consultant: forecasting, R, and "
               "explaining models to the people who must sign off on them.",
               (("Statistics", "expert"), ("R", "expert"), ("Forecasting", "advanced"))),
    ExpertSpec("Ethan", "Walker", "America/Chicago", DS, 85,
               "ML engineer (9 years) who gets models into production and keeps them there: "
               "MLOps, feature pipelines, monitoring.",
               (("MLOps", "expert"), ("Python", "expert"), ("Spark", "advanced"))),
    ExpertSpec("Ana", "Costa", "America/Sao_Paulo", DS, 0,
               "Data engineer at a São Paulo bank (6 years): dbt, Airflow and data modelling. "
               "I keep hours for career switchers; pay what you like.",
               (("Data Modeling", "expert"), ("dbt", "advanced"), ("Airflow", "advanced"))),
    ExpertSpec("Elise", "Laurent", "Europe/Paris", DE, 80,
               "Product designer for 12 years, from agencies to a scale-up's design system. "
               "Portfolio reviews and UX critiques.",
               (("UX Design", "expert"), ("Design Systems", "expert"), ("Figma", "expert"))),
    ExpertSpec("Jin-woo", "Park", "Asia/Seoul", DE, 55,
               "Brand designer (8 years): logos, typography and identity systems for startups "
               "in Seoul and beyond.",
               (("Branding", "expert"), ("Typography", "advanced"), ("Illustrator", "advanced"))),
    ExpertSpec("Olivia", "Bennett", "Australia/Sydney", DE, 70,
               "UX researcher for 10 years. Interview scripts, usability tests, and turning "
               "findings into decisions a team acts on.",
               (("User Research", "expert"), ("Usability Testing", "expert"),
                ("Service Design", "intermediate"))),
    ExpertSpec("Yusuf", "Demir", "Europe/Istanbul", DE, 35,
               "Motion designer and illustrator (6 years), making apps feel alive with After "
               "Effects and Lottie.",
               (("Motion Design", "expert"), ("After Effects", "expert"),
                ("Illustration", "advanced"))),
    ExpertSpec("Margaret", "O'Neill", "Europe/Dublin", BU, 120,
               "Former COO of a 300-person SaaS company, 20 years in operations. Scaling "
               "teams, OKRs and preparing for a board meeting.",
               (("Operations", "expert"), ("OKRs", "expert"), ("Fundraising", "advanced", FI))),
    ExpertSpec("Rahul", "Mehta", "Asia/Dubai", BU, 100,
               "Strategy consultant (13 years) for retail and logistics in the Gulf: market "
               "entry, pricing and business plans that survive contact with a bank.",
               (("Business Strategy", "expert"), ("Market Entry", "expert"),
                ("Pricing", "advanced"))),
    ExpertSpec("Chloé", "Martin", "America/Toronto", BU, 60,
               "Founder with two exits and an accelerator mentor. Product-market fit, customer "
               "discovery and your first ten hires.",
               (("Startups", "expert"), ("Customer Discovery", "expert"), ("Hiring", "advanced"))),
    ExpertSpec("Lan", "Nguyen", "Asia/Ho_Chi_Minh", BU, 40,
               "Supply chain manager (11 years) in electronics manufacturing: sourcing, vendor "
               "negotiations and lean operations.",
               (("Supply Chain", "expert"), ("Negotiation", "advanced"), ("Lean", "advanced"))),
    ExpertSpec("Jake", "Thompson", "America/New_York", MK, 70,
               "Growth marketer (9 years) at consumer apps: paid acquisition, lifecycle email "
               "and attribution you can trust.",
               (("Growth Marketing", "expert"), ("Email Marketing", "expert"),
                ("Google Ads", "advanced"))),
    ExpertSpec("Isabel", "García", "Europe/Madrid", MK, 50,
               "SEO consultant and content strategist for B2B software (10 years). Content "
               "that ranks and converts.",
               (("SEO", "expert"), ("Content Strategy", "expert"), ("Copywriting", "advanced"))),
    ExpertSpec("Aisha", "Bello", "Europe/London", MK, 65,
               "Brand marketer (12 years) in consumer goods and fintech: positioning, launches "
               "and social campaigns.",
               (("Brand Strategy", "expert"), ("Product Launches", "advanced"),
                ("Social Media", "advanced"))),
    ExpertSpec("Mateo", "López", "America/Bogota", MK, 0,
               "Community manager and creator coach (5 years). Growing an audience on YouTube "
               "without burning out. Pay what you like.",
               (("Community Building", "advanced"), ("YouTube", "advanced"),
                ("Video Editing", "intermediate"))),
    ExpertSpec("William", "Chen", "Asia/Singapore", FI, 110,
               "CFA charterholder, 15 years in equity research and corporate finance: "
               "valuation, financial models and reading an annual report.",
               (("Financial Modeling", "expert"), ("Valuation", "expert"), ("Excel", "expert"))),
    ExpertSpec("Fatima", "El Amrani", "Africa/Casablanca", FI, 45,
               "Accountant for 10 years, advising freelancers and small companies on "
               "bookkeeping, VAT and cash flow.",
               (("Bookkeeping", "expert"), ("Cash Flow", "expert"), ("Tax Planning", "advanced"))),
    ExpertSpec("Lars", "Johansson", "Europe/Stockholm", FI, 90,
               "Venture investor (8 years) and former founder. Pitch decks, term sheets and cap "
               "tables, explained plainly.",
               (("Venture Capital", "expert"), ("Pitch Decks", "expert"),
                ("Cap Tables", "advanced"))),
    ExpertSpec("Thandiwe", "Nkosi", "Africa/Johannesburg", FI, 55,
               "Personal finance coach (7 years), formerly a bank risk analyst: budgeting, "
               "paying off debt and first steps in investing.",
               (("Personal Finance", "expert"), ("Budgeting", "expert"),
                ("Index Investing", "advanced"))),
    ExpertSpec("Rachel", "Goldberg", "America/New_York", CD, 80,
               "Tech recruiter for 10 years, now a job-search coach: CV reviews, interview "
               "practice and salary negotiation.",
               (("Resume Review", "expert"), ("Interview Preparation", "expert"),
                ("Salary Negotiation", "expert"))),
    ExpertSpec("Ahmed", "Hassan", "Africa/Cairo", CD, 30,
               "Engineering manager for 12 years who mentors new managers: one-on-ones, "
               "feedback and promotion cases.",
               (("Engineering Management", "expert"), ("Leadership", "expert"),
                ("Mentoring", "advanced"))),
    ExpertSpec("Emma", "Schmidt", "Europe/Zurich", CD, 95,
               "ICF-certified executive coach (16 years): career transitions, leadership "
               "presence and public speaking.",
               (("Executive Coaching", "expert"), ("Public Speaking", "expert"),
                ("Career Transitions", "expert"))),
    ExpertSpec("Kofi", "Asante", "Africa/Accra", CD, 0,
               "Switched from teaching to software four years ago and now helps others plan "
               "the same move: learning plans and portfolios. Pay what you like.",
               (("Career Change", "advanced"), ("Portfolio Review", "advanced"),
                ("Networking", "intermediate"))),
    ExpertSpec("Yuki", "Sato", "Asia/Tokyo", LA, 35,
               "Japanese teacher for 9 years: JLPT preparation from N5 to N1 and business "
               "Japanese.",
               (("Japanese", "expert"), ("JLPT Preparation", "expert"),
                ("Business Japanese", "advanced"))),
    ExpertSpec("Camille", "Dubois", "Europe/Paris", LA, 40,
               "French tutor for 11 years: conversation practice, DELF/DALF preparation and "
               "pronunciation.",
               (("French", "expert"), ("DELF Preparation", "expert"),
                ("Pronunciation", "advanced"))),
    ExpertSpec("Javier", "Morales", "America/Argentina/Buenos_Aires", LA, 25,
               "Spanish teacher (7 years) focused on conversation and the Spanish of Latin "
               "America.",
               (("Spanish", "expert"), ("Conversation Practice", "expert"),
                ("Grammar", "advanced"))),
    ExpertSpec("Wei", "Li", "Asia/Shanghai", LA, 45,
               "Mandarin tutor for professionals (8 years): HSK preparation and business "
               "Chinese.",
               (("Mandarin", "expert"), ("HSK Preparation", "advanced"),
                ("Business Chinese", "advanced"))),
    ExpertSpec("Sarah", "Mitchell", "Pacific/Auckland", LA, 50,
               "English teacher for 14 years and former IELTS examiner: academic writing and "
               "speaking practice.",
               (("English", "expert"), ("IELTS Preparation", "expert"),
                ("Academic Writing", "advanced"))),
)  # fmt: skip

CLIENTS = (
    ClientSpec("Noah", "Fischer", "Europe/Vienna",
               "Product manager moving into data; learning SQL and statistics."),
    ClientSpec("Zara", "Ahmed", "Europe/London",
               "Runs a small bakery chain and is planning a first funding round."),
    ClientSpec("Lucas", "Oliveira", "America/Sao_Paulo",
               "Junior developer preparing for system design interviews."),
    ClientSpec("Ingrid", "Nilsson", "Europe/Oslo", "Design student building a portfolio."),
    ClientSpec("Daniel", "Cohen", "Asia/Jerusalem", "Marketing lead at a climate startup."),
    ClientSpec("Maya", "Patel", "America/Los_Angeles", "Nurse learning to code in the evenings."),
    ClientSpec("Seun", "Adeyemi", "Africa/Lagos",
               "Freelance designer who wants to get taxes and pricing right."),
    ClientSpec("Jing", "Chen", "Asia/Hong_Kong", "Analyst studying for CFA level II."),
    ClientSpec("Leila", "Haddad", "America/Toronto", "Moving to Tokyo next year."),
    ClientSpec("Marco", "Bianchi", "Europe/Rome",
               "Runs an online shop and wants more organic traffic."),
    ClientSpec("Emily", "Johnson", "America/Denver",
               "Teacher changing careers into UX research."),
    ClientSpec("Arjun", "Nair", "Asia/Kolkata",
               "Backend developer aiming for a first engineering-manager role."),
)  # fmt: skip

# Weekly hours, wall-clock times in the expert's zone; day_of_week 0 = Sunday, as the schema.
SUN, MON, TUE, WED, THU, FRI, SAT = range(7)
WEEKDAYS = (MON, TUE, WED, THU, FRI)
WEEKLY_HOURS = (
    ((WEEKDAYS, "09:00", "12:00"), (WEEKDAYS, "14:00", "17:00")),  # office hours
    (((MON, WED, FRI), "08:00", "13:00"),),  # mornings
    (((TUE, THU), "10:00", "18:00"), ((SAT,), "10:00", "13:00")),
    (((MON, TUE, WED, THU), "17:00", "21:00"),),  # evenings, beside a day job
    (((WED, THU, FRI, SAT, SUN), "11:00", "16:00"),),
    ((WEEKDAYS, "07:00", "10:00"), ((SAT,), "09:00", "12:00")),
)

# A meeting's story: the steps that bring it to its final state, in order. "pay" pays the
# expert's price (or, without a price, VOLUNTARY_PAYMENT): held while the meeting is open,
# released on completion, refunded on cancellation.
FIRST_STORY = ("pay", "confirm", "complete")  # each expert's first: every expert gets rated
STORIES = (
    (("pay", "confirm", "complete"), 3),
    (("confirm", "complete", "pay"), 1),  # paid afterwards: released at once
    (("confirm", "complete"), 1),
    (("pay", "confirm"), 2),
    (("confirm",), 1),
    (("pay",), 1),
    ((), 2),
    (("decline",), 1),
    (("pay", "withdraw"), 1),
    (("confirm", "pay", "withdraw"), 1),
    (("pay", "confirm", "decline"), 1),
)
EXTRA_MEETINGS = 2  # per expert on average, beside the first
VOLUNTARY_PAYMENT = 20
DURATIONS_MINUTES = (60, 60, 60, 60, 60, 60, 30, 30, 90, 90)
BOOKING_DAYS = (1, 21)  # meetings start this many days ahead (in the expert's zone)
MIN_LEAD = dt.timedelta(hours=2)
STEP = dt.timedelta(minutes=30)
CREDIT_PACKS = (200, 300, 500, 800)
PAYMENT_METHODS = ("credit_card", "debit_card", "paypal", "bank_transfer")

TITLES = (
    "Intro call: {skill}",
    "{skill} review session",
    "Questions about {skill}",
    "{skill}: where do I start?",
    "Deep dive into {skill}",
    "Feedback on my {skill} work",
    "{skill} mentoring",
)
DESCRIPTIONS = (
    "I'd like an hour on {skill}; I will send some context beforehand.",
    "Looking for honest feedback and a plan for the next month.",
    "A short session to get unblocked. Notes afterwards would be great.",
    "Second session: following up on what we discussed last time.",
    "",
)

REVIEW_TEXTS = {
    5: (
        "Exceptional session: clear, practical and generous with time.",
        "Exactly what I needed. {name} knows {skill} inside out.",
        "I left with a concrete plan. Worth every credit.",
        "Super helpful and kind. Booking again.",
    ),
    4: (
        "Very useful; a bit rushed at the end, but great advice.",
        "Good session with practical examples.",
        "Knowledgeable and friendly, would recommend.",
    ),
    3: (
        "Helpful overall, though we spent too long on the basics.",
        "Decent advice, but I expected more depth on {skill}.",
    ),
    2: ("Not quite what I was looking for.",),
    1: ("The session did not match its description.",),
}
REQUESTER_REVIEW_TEXTS = (
    "Well prepared and asked great questions.",
    "A pleasure to work with.",
    "Came with clear goals; a great session.",
)

# Conversations: (who speaks, what); {expert}, {requester}: first names.
R, E = "requester", "expert"
SCRIPTS = {
    "before": (
        (
            (R, 'Hi {expert}, I just booked "{title}". Anything I should prepare?'),
            (E, "Hi {requester}, thanks for booking! A few lines on where you are with {skill} "
                "and what you want out of the session would help."),
            (R, "Will do, I'll send them tomorrow."),
            (E, "Perfect. Talk soon!"),
        ),
        (
            (R, "Hello {expert}, could we use the session to go through a real example?"),
            (E, "Absolutely, {requester}. Bring it along and we'll work through it together."),
            (R, "Great, thank you!"),
        ),
        (
            (E, "Hi {requester}, I saw your request about {skill}. Is the time still good "
                "for you?"),
            (R, "Yes, it works. Looking forward to it."),
        ),
    ),
    "after": (
        (
            (R, "Thanks again for the session, {expert}. {skill} finally clicked."),
            (E, "Glad it helped, {requester}! I'll send you the links I mentioned."),
            (R, "Got them, thank you!"),
        ),
        (
            (R, "Hi {expert}, I tried what we discussed and it worked. Could we do a "
                "follow-up?"),
            (E, "That's great news. Sure, book another slot whenever it suits you."),
        ),
    ),
    "cancelled": (
        (
            (R, "Sorry {expert}, something came up and I had to cancel. I'll book again soon."),
            (E, "No problem at all, {requester}. Good luck with everything!"),
        ),
        (
            (E, "Hi {requester}, I'm sorry about our meeting: I'm travelling that week. "
                "Could we find another time?"),
            (R, "Of course, I'll pick a new slot."),
            (E, "Thank you for understanding."),
        ),
    ),
}  # fmt: skip
CONVERSATION_SHARE = 0.6  # of the meetings whose two people have no conversation yet
UNREAD_SHARE = 0.35  # conversations whose last messages the receiver has not read


class DatabaseHasUsers(Exception):
    """The database is not empty and --force was not given."""


@dataclasses.dataclass
class Person:
    id: int
    username: str
    first_name: str
    timezone: str
    credits_per_hour: int = 0
    # (category_id, skill_name) of an expert
    skills: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    # (day_of_week, start, end), declared after the bookings
    weekly_hours: list[tuple[int, dt.time, dt.time]] = dataclasses.field(default_factory=list)
    quality: float = 4.5  # an expert's typical rating
    busy: list[tuple[dt.datetime, dt.datetime]] = dataclasses.field(default_factory=list)
    open_requests: int = 0


# A booked meeting as it ended up (its final status), its requester, its expert and the skill
# it is about: what reviews and conversations are written from.
Booked = tuple[dict, Person, Person, str]


@dataclasses.dataclass
class Summary:
    experts: list[Person] = dataclasses.field(default_factory=list)
    clients: list[Person] = dataclasses.field(default_factory=list)
    skills: int = 0
    weekly_hours: int = 0
    purchases: int = 0
    meetings: Counter = dataclasses.field(default_factory=Counter)
    payments: Counter = dataclasses.field(default_factory=Counter)
    reviews: int = 0
    conversations: int = 0
    messages: int = 0
    unread: int = 0

    def lines(self) -> list[str]:
        by_status = ", ".join(
            f"{self.meetings[s]} {s}" for s in ("pending", "confirmed", "completed", "cancelled")
        )
        paid = ", ".join(
            f"{self.payments[s]} {s}" for s in (credits.HELD, credits.RELEASED, credits.REFUNDED)
        )
        return [
            f"{len(self.experts)} experts ({self.skills} skills, {self.weekly_hours} weekly "
            f"availability windows), {len(self.clients)} clients",
            f"{self.meetings.total()} meetings: {by_status}",
            f"payments for meetings: {paid}; {self.purchases} credit purchases",
            f"{self.reviews} reviews",
            f"{self.messages} messages in {self.conversations} conversations "
            f"({self.unread} unread)",
        ]


async def create_marketplace(services: Services, *, force: bool = False) -> Summary:
    """Fill the database; refuses one that has users unless `force`, and then adds the demo
    accounts alongside them (a taken username gets a number: amara.okafor2). Never deletes."""
    existing = await users_q.count_users(services.db)
    if existing and not force:
        raise DatabaseHasUsers(
            f"the database already has {existing} user(s): demo-data fills an empty database; "
            "run again with --force to add the demo marketplace alongside them"
        )
    return await _Marketplace(services).create()


class _Marketplace:
    def __init__(self, services: Services):
        self.services = services
        self.db = services.db
        self.rng = random.Random(SEED)
        self.now = dt.datetime.now(dt.UTC)
        self.summary = Summary()

    async def create(self) -> Summary:
        # bcrypt once, at the configured cost, in the hasher's executor.
        password_hash = await self.services.passwords.hash(DEMO_PASSWORD)
        categories = {c["name"]: c["id"] for c in await skills_q.list_categories(self.db)}
        for spec in EXPERTS:
            self.summary.experts.append(await self._add_expert(spec, password_hash, categories))
        for client in CLIENTS:
            person = await self._add_person(client, password_hash, client.bio)
            self.summary.clients.append(person)
            await self._buy(person, self.rng.choice(CREDIT_PACKS))
        booked = await self._add_meetings()
        for expert in self.summary.experts:
            for day, start, end in expert.weekly_hours:
                await availability_q.insert_window(
                    self.db, expert.id, day_of_week=day, start_time=start, end_time=end
                )
                self.summary.weekly_hours += 1
        await self._add_reviews(booked)
        await self._add_conversations(booked)
        return self.summary

    # ------------------------------------------------------------------------------ people
    async def _add_person(
        self, spec: ExpertSpec | ClientSpec, password_hash: str, bio: str, price: int = 0
    ) -> Person:
        base = _username(spec.first_name, spec.last_name)
        for n in range(1, 1000):
            username = base if n == 1 else f"{base}{n}"
            try:
                user = await accounts.register_hashed(
                    self.services,
                    username=username,
                    email=f"{username}@{EMAIL_DOMAIN}",
                    password_hash=password_hash,
                    first_name=spec.first_name,
                    last_name=spec.last_name,
                )
                break
            except InvalidField as exc:
                # Taken (a run with --force): try the next number.
                if exc.field not in ("username", "email"):
                    raise
        else:
            raise RuntimeError(f"no free username like {base}")
        await users_q.update_profile(
            self.db,
            user["id"],
            first_name=None,
            last_name=None,
            bio=bio,
            profile_picture=None,
            timezone=spec.timezone,
            credits_per_hour=price,
        )
        return Person(
            id=user["id"],
            username=username,
            first_name=spec.first_name,
            timezone=spec.timezone,
            credits_per_hour=price,
        )

    async def _add_expert(
        self, spec: ExpertSpec, password_hash: str, categories: dict[str, int]
    ) -> Person:
        expert = await self._add_person(spec, password_hash, spec.bio, spec.credits_per_hour)
        for skill in spec.skills:
            name, level = skill[0], skill[1]
            category_id = categories[skill[2] if len(skill) > 2 else spec.category]
            await skills_q.insert_user_skill(
                self.db,
                expert.id,
                category_id=category_id,
                skill_name=name,
                proficiency_level=level,
            )
            expert.skills.append((category_id, name))
            self.summary.skills += 1
        for days, start, end in self.rng.choice(WEEKLY_HOURS):
            for day in days:
                expert.weekly_hours.append(
                    (day, dt.time.fromisoformat(start), dt.time.fromisoformat(end))
                )
        expert.quality = self.rng.uniform(3.9, 5.0)
        return expert

    async def _buy(self, person: Person, amount: int) -> None:
        await credits.purchase(
            self.services,
            person.id,
            payment_method=self.rng.choice(PAYMENT_METHODS),
            amount=amount * self.services.config.credits.price_usd,
            credits=amount,
        )
        self.summary.purchases += 1

    # ---------------------------------------------------------------------------- meetings
    async def _add_meetings(self) -> list[Booked]:
        """Book and play every meeting's story; returns (meeting, requester, expert, skill)."""
        experts = self.summary.experts
        pool = [story for story, weight in STORIES for _ in range(weight)]
        extras = [pool[i % len(pool)] for i in range(EXTRA_MEETINGS * len(experts))]
        self.rng.shuffle(extras)
        plan: list[tuple[Person, tuple[str, ...]]] = [(e, FIRST_STORY) for e in experts]
        plan += [(experts[i % len(experts)], story) for i, story in enumerate(extras)]
        booked = []
        for expert, story in plan:
            found = await self._book(expert, story)
            if found is not None:
                booked.append(found)
        return booked

    async def _book(self, expert: Person, story: tuple[str, ...]) -> Booked | None:
        max_open = self.services.config.meetings.max_open_requests
        duration = dt.timedelta(minutes=self.rng.choice(DURATIONS_MINUTES))
        # Mostly clients; now and then an expert books a colleague.
        candidates = [
            p
            for p in (*self.summary.clients, *self.rng.sample(self.summary.experts, 4))
            if p.id != expert.id and p.open_requests < max_open
        ]
        self.rng.shuffle(candidates)
        for requester in candidates:
            when = self._free_time(expert, requester, duration)
            if when is not None:
                break
        else:
            return None  # nobody free: the plan simply has one meeting fewer
        start, end = when
        category_id, skill = self.rng.choice(expert.skills)
        meeting = await meetings.book(
            self.services,
            requester_id=requester.id,
            expert_id=expert.id,
            category_id=category_id,
            title=self.rng.choice(TITLES).format(skill=skill),
            description=self.rng.choice(DESCRIPTIONS).format(skill=skill),
            scheduled_start=start,
            scheduled_end=end,
        )
        for busy in (expert.busy, requester.busy):
            busy.append((start, end))
        payment = credits.NONE
        status = "pending"
        for step in story:
            if step == "pay":
                await self._pay(requester, meeting)
                payment = credits.RELEASED if status == "completed" else credits.HELD
                continue
            status, who = {
                "confirm": ("confirmed", expert),
                "complete": ("completed", requester),  # the expert must wait for the start
                "withdraw": ("cancelled", requester),
                "decline": ("cancelled", expert),
            }[step]
            await meetings.change_status(
                self.services, meeting_id=meeting["id"], user_id=who.id, new_status=status
            )
            payment = credits.payment_status_after(payment, status)
        if status == "pending":
            requester.open_requests += 1
        self.summary.meetings[status] += 1
        self.summary.payments[payment] += 1
        return {**meeting, "status": status}, requester, expert, skill

    def _free_time(
        self, expert: Person, requester: Person, duration: dt.timedelta
    ) -> tuple[dt.datetime, dt.datetime] | None:
        """A start inside the expert's weekly hours, on a day ahead, when neither person has a
        meeting; None if there is none."""
        zone = ZoneInfo(expert.timezone)
        today = self.now.astimezone(zone).date()
        days = list(range(BOOKING_DAYS[0], BOOKING_DAYS[1] + 1))
        self.rng.shuffle(days)
        for offset in days:
            day = today + dt.timedelta(days=offset)
            day_of_week = (day.weekday() + 1) % 7  # Python counts from Monday, the schema Sunday
            starts = []
            for window_day, window_start, window_end in expert.weekly_hours:
                if window_day != day_of_week:
                    continue
                local = dt.datetime.combine(day, window_start, zone)
                while local + duration <= dt.datetime.combine(day, window_end, zone):
                    starts.append(local.astimezone(dt.UTC))
                    local += STEP
            self.rng.shuffle(starts)
            for start in starts:
                end = start + duration
                if start > self.now + MIN_LEAD and all(
                    end <= b_start or start >= b_end
                    for b_start, b_end in (*expert.busy, *requester.busy)
                ):
                    return start, end
        return None

    async def _pay(self, requester: Person, meeting: dict) -> None:
        amount = meeting["price_credits"] or VOLUNTARY_PAYMENT
        account = await credits_q.get_balance(self.db, requester.id)
        if account is None or account["balance"] < amount:
            await self._buy(requester, max(self.rng.choice(CREDIT_PACKS), amount))
        await credits.pay_for_meeting(
            self.services, requester.id, meeting_id=meeting["id"], amount=amount
        )

    # --------------------------------------------------------------- reviews, conversations
    async def _add_reviews(self, booked: list[Booked]) -> None:
        for meeting, requester, expert, skill in booked:
            if meeting["status"] != "completed":
                continue
            if self.rng.random() < 0.9:
                rating = min(5, max(1, round(self.rng.gauss(expert.quality, 0.6))))
                text = self.rng.choice(REVIEW_TEXTS[rating])
                await meetings.review(
                    self.services,
                    meeting_id=meeting["id"],
                    reviewer_id=requester.id,
                    reviewee_id=expert.id,
                    rating=rating,
                    review_text=text.format(name=expert.first_name, skill=skill),
                )
                self.summary.reviews += 1
            if self.rng.random() < 0.4:
                await meetings.review(
                    self.services,
                    meeting_id=meeting["id"],
                    reviewer_id=expert.id,
                    reviewee_id=requester.id,
                    rating=5,
                    review_text=self.rng.choice(REQUESTER_REVIEW_TEXTS),
                )
                self.summary.reviews += 1

    async def _add_conversations(self, booked: list[Booked]) -> None:
        talked: set[frozenset[int]] = set()
        for meeting, requester, expert, skill in booked:
            pair = frozenset((requester.id, expert.id))
            if pair in talked or self.rng.random() >= CONVERSATION_SHARE:
                continue
            talked.add(pair)
            kind = {"completed": "after", "cancelled": "cancelled"}.get(meeting["status"], "before")
            people = {R: requester, E: expert}
            names = {"requester": requester.first_name, "expert": expert.first_name}
            script = self.rng.choice(SCRIPTS[kind])
            for speaker, text in script:
                sender = people[speaker]
                receiver = expert if sender is requester else requester
                content = text.format(**names, skill=skill, title=meeting["title"])
                await messages.send_message(self.services, sender.id, receiver.id, content)
            self.summary.conversations += 1
            self.summary.messages += len(script)
            last_speaker = script[-1][0]
            last_sender = people[last_speaker]
            last_receiver = expert if last_sender is requester else requester
            # The last sender has read what came before; the receiver of the last message
            # has read it too, except in some conversations, which stay unread.
            await messages.mark_read(self.services, last_sender.id, last_receiver.id)
            if self.rng.random() < UNREAD_SHARE:
                self.summary.unread += sum(1 for who, _ in script if who == last_speaker)
            else:
                await messages.mark_read(self.services, last_receiver.id, last_sender.id)


def _username(first_name: str, last_name: str) -> str:
    """amara.okafor, tomas.silva, margaret.oneill: ASCII, as users_username_format_check wants."""
    text = unicodedata.normalize("NFKD", f"{first_name}.{last_name}".lower())
    ascii_text = text.encode("ascii", "ignore").decode().replace(" ", ".")
    return "".join(c for c in ascii_text if c.isalnum() or c in "._-")
