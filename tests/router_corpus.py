# ruff: noqa: E501
"""Labelled prompts for the local classifier: (category, prompt, has an image).

Written to read like real requests to a chat API, eight per category; the
classifier's agreement with these labels is reported by test_router_classifier.
"""

from __future__ import annotations

CORPUS: tuple[tuple[str, str, bool], ...] = (
    # coding
    (
        "coding",
        "Write a Python function that removes duplicates from a list but keeps the order.",
        False,
    ),
    (
        "coding",
        "Why does this throw a NullPointerException?\n```java\nString s = map.get(key);\nreturn s.length();\n```",
        False,
    ),
    ("coding", "How do I center a div horizontally and vertically with CSS flexbox?", False),
    (
        "coding",
        "Refactor this JavaScript to use async/await instead of promise chains: fetch(url).then(r => r.json()).then(data => render(data)).catch(console.error)",
        False,
    ),
    (
        "coding",
        "My Docker container exits immediately with code 137, what could cause that?",
        False,
    ),
    (
        "coding",
        "Write a SQL query that returns the top 5 customers by total order value in 2024.",
        False,
    ),
    ("coding", "Implement an LRU cache in Rust with O(1) get and put.", False),
    (
        "coding",
        "git says 'detached HEAD' after I checked out a tag. How do I get back to my branch without losing commits?",
        False,
    ),
    # reasoning
    (
        "reasoning",
        "If all bloops are razzies and all razzies are lazzies, are all bloops definitely lazzies? Explain.",
        False,
    ),
    (
        "reasoning",
        "A bat and a ball cost $1.10 in total. The bat costs $1.00 more than the ball. How much does the ball cost?",
        False,
    ),
    ("reasoning", "Solve for x: 3x + 7 = 2x - 5", False),
    ("reasoning", "Prove that the square root of 2 is irrational.", False),
    (
        "reasoning",
        "In how many ways can 8 people sit around a round table if two of them refuse to sit together?",
        False,
    ),
    (
        "reasoning",
        "Three boxes are labelled apples, oranges and mixed, and every label is wrong. You may pick one fruit from one box. How do you relabel them correctly? Think step by step.",
        False,
    ),
    (
        "reasoning",
        "What is the probability of getting at least one six in four rolls of a fair die?",
        False,
    ),
    ("reasoning", "Compute the integral of x^2 * e^x dx.", False),
    # creative
    (
        "creative",
        "Write a short story about a lighthouse keeper who finds a message in a bottle.",
        False,
    ),
    ("creative", "Compose a haiku about autumn rain on a city street.", False),
    ("creative", "Give me ten catchy slogan ideas for a bakery that only sells sourdough.", False),
    (
        "creative",
        "Write song lyrics about leaving your hometown, in the style of a folk ballad.",
        False,
    ),
    (
        "creative",
        "Imagine a world where gravity reverses every night. Describe a day in the life of a child there.",
        False,
    ),
    ("creative", "Write a limerick about a cat who learned to code.", False),
    (
        "creative",
        "Create a villain for my fantasy novel: backstory, motivation and a signature quote.",
        False,
    ),
    ("creative", "Draft a wedding toast for my sister that is funny but heartfelt.", False),
    # factual
    ("factual", "What is the capital of Australia?", False),
    ("factual", "Who wrote Pride and Prejudice?", False),
    ("factual", "When did the Berlin Wall fall?", False),
    ("factual", "How many bones are in the adult human body?", False),
    ("factual", "What is the boiling point of water at sea level in Fahrenheit?", False),
    ("factual", "Define photosynthesis.", False),
    ("factual", "Which planet has the most moons?", False),
    ("factual", "What does the acronym NATO stand for?", False),
    # analysis
    (
        "analysis",
        "Compare the pros and cons of renting versus buying a home for a 30-year-old in a big city.",
        False,
    ),
    (
        "analysis",
        "Analyze the main causes of the 2008 financial crisis and their relative importance.",
        False,
    ),
    (
        "analysis",
        "Here are our monthly sales: Jan 120, Feb 135, Mar 98, Apr 160, May 171. What trends do you see and what might explain the dip in March?",
        False,
    ),
    (
        "analysis",
        "Evaluate the strengths and weaknesses of this business plan: a subscription box for houseplants at $40 a month.",
        False,
    ),
    (
        "analysis",
        "Summarize the key arguments of this paragraph and assess whether the conclusion follows: 'Remote work increases productivity because employees save commuting time, therefore all companies should go fully remote.'",
        False,
    ),
    (
        "analysis",
        "What are the trade-offs between microservices and a monolith for a team of five engineers?",
        False,
    ),
    (
        "analysis",
        "Critique the methodology of a study that surveyed 50 gym members to conclude that exercise improves happiness.",
        False,
    ),
    (
        "analysis",
        "Break down the cost structure of a typical SaaS company and which levers most affect margins.",
        False,
    ),
    # conversation
    ("conversation", "Hi! How are you today?", False),
    ("conversation", "Thanks, that was really helpful :)", False),
    ("conversation", "I'm feeling a bit bored this evening, any ideas to chat about?", False),
    ("conversation", "Good morning! Did you sleep well? Haha, I know you don't sleep.", False),
    ("conversation", "Tell me a little about yourself.", False),
    ("conversation", "I just got back from a long walk with my dog, it was lovely.", False),
    ("conversation", "lol okay that's fair", False),
    ("conversation", "What do you like to talk about?", False),
    # multimodal
    ("multimodal", "What's in this picture?", True),
    ("multimodal", "Describe this image in detail.", True),
    ("multimodal", "Can you read the text on this receipt and add up the total?", True),
    ("multimodal", "Is the plant in this photo healthy?", True),
    ("multimodal", "Transcribe the handwriting in the attached screenshot.", True),
    ("multimodal", "What breed is this dog?", True),
    ("multimodal", "Explain what this chart shows.", True),
    (
        "multimodal",
        "Look at the diagram in this image and tell me which component is missing.",
        True,
    ),
    # research
    (
        "research",
        "Find recent studies on the effect of intermittent fasting on longevity and cite your sources.",
        False,
    ),
    ("research", "Search the web for the latest news about fusion energy breakthroughs.", False),
    (
        "research",
        "Do a literature review of transformer architectures for time series forecasting, with references.",
        False,
    ),
    (
        "research",
        "What are the current best practices for securing Kubernetes clusters? Please include links to sources.",
        False,
    ),
    (
        "research",
        "Research the history of the Silk Road and provide citations from academic papers.",
        False,
    ),
    ("research", "Look up the latest statistics on global electric vehicle sales in 2025.", False),
    (
        "research",
        "Gather evidence from peer-reviewed sources on whether bilingualism delays dementia.",
        False,
    ),
    (
        "research",
        "Investigate what the scientific consensus is on microplastics in drinking water, citing sources.",
        False,
    ),
)

# Written after the classifier's rules and never used to tune them: the
# figure on these is the honest estimate of how it does on new prompts.
HELD_OUT: tuple[tuple[str, str, bool], ...] = (
    (
        "coding",
        "Convert this bash loop into a Makefile target that runs for every .c file in src/.",
        False,
    ),
    (
        "coding",
        "What's the difference between a mutex and a semaphore in Go, with an example?",
        False,
    ),
    (
        "coding",
        "TypeError: cannot read properties of undefined (reading 'map') in my React component, help",
        False,
    ),
    (
        "reasoning",
        "If a train leaves at 3pm going 60 mph and another leaves at 4pm going 80 mph, when does the second catch up?",
        False,
    ),
    ("reasoning", "Is 221 a prime number? Show your reasoning.", False),
    (
        "reasoning",
        "Five pirates must split 100 gold coins by vote; what does the most senior pirate propose?",
        False,
    ),
    ("creative", "Write a bedtime story about a dragon who is afraid of the dark.", False),
    ("creative", "Come up with a name and a tagline for a coffee shop run by robots.", False),
    ("creative", "Write a poem from the point of view of a forgotten umbrella.", False),
    ("factual", "Who painted the Mona Lisa?", False),
    ("factual", "What is the tallest mountain in Africa?", False),
    ("factual", "When was the first iPhone released?", False),
    (
        "analysis",
        "Compare PostgreSQL and MongoDB for an analytics workload and recommend one.",
        False,
    ),
    (
        "analysis",
        "Assess the risks of expanding a small restaurant chain into a new country.",
        False,
    ),
    (
        "analysis",
        "Here is my monthly budget: rent 1500, food 600, car 450, savings 200. Where could I cut costs?",
        False,
    ),
    ("conversation", "Hey there, what's up?", False),
    ("conversation", "Haha you're funny. Do you have a favourite colour?", False),
    ("conversation", "Thank you so much, have a great day!", False),
    ("multimodal", "What does this sign say?", True),
    ("multimodal", "Which of these two shirts looks better?", True),
    ("multimodal", "Describe the architecture style of the building in the photo.", True),
    (
        "research",
        "Find the latest research papers on CRISPR off-target effects and summarise them with citations.",
        False,
    ),
    (
        "research",
        "What do recent surveys say about remote work adoption in Europe? Cite sources.",
        False,
    ),
    (
        "research",
        "Search for current guidance from health agencies on daily caffeine limits.",
        False,
    ),
)
