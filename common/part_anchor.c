/* Keeps every part library non-empty while a part has no sources of its own. */
int sg_part_anchor_unused;
