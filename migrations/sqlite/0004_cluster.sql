-- ucm schema, version 4: the cluster outbox. A status or profile change made on a node is
-- written here in the same transaction as the change itself (so it is durable before it is
-- acknowledged) and pushed to each peer in `seq` order; `peer_progress` remembers how far
-- each peer got, so a peer that was down receives the rest, in order, once.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    node TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('status', 'profile')),
    contact TEXT NOT NULL,
    change TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE peer_progress (
    node TEXT NOT NULL,
    peer TEXT NOT NULL,
    sent_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (node, peer)
);
