/* SPDX-License-Identifier: MIT */
/*
 * twofold: the command-line client of twofoldd.  A table of verbs and a loop
 * that finds the one asked for (as wireguard-tools' wg.c does); the verbs live
 * in offline.c (init, id, card), contact.c, intro.c (propose, intros, show,
 * withdraw, inbox, accept, decline), message.c (message, messages, outbox)
 * node.c (status, watch, ping), policy.c (policy check, reload, show,
 * test), profile.c (profile, profile set) and backup.c (backup, restore).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/args.h"
#include "cli/backup.h"
#include "cli/config.h"
#include "cli/contact.h"
#include "cli/intro.h"
#include "cli/message.h"
#include "cli/node.h"
#include "cli/offline.h"
#include "cli/policy.h"
#include "cli/mailbox.h"
#include "cli/profile.h"
#include "cli/request.h" /* requests */
#include "cli/render.h"
#include "proto/ctl.h"
#include "cli/web/verb.h"

struct verb {
    const char *name;
    const char *synopsis; /* arguments after the name */
    const char *summary;  /* one line for the verb list */
    const char *details;  /* the rest of its --help */
    tf_cli_verb_fn *fn;
    const struct verb *group; /* sub-verbs (NULL-name terminated); with fn too, fn runs
                                 when no sub-verb is named */
};

#define NAME_OR_ID                                                                                 \
    "  NAME|ID            an alias, a full id, or the first 6 or more characters of an id\n"

#define INTRO_ARG                                                                                  \
    "  INTRO              an intro's id (64 hex digits), or its first 8 or more digits\n"

static tf_cli_verb_fn cmd_help;

static const struct verb CONTACT_VERBS[] = {
    {"add", "CARD|- [--alias NAME] [--trust TRUST] [--tag TAG]...",
     "add a contact from their card, or update them with a newer card",
     "  CARD               their card (tfcard1:...), as 'twofold card' prints it; - reads it\n"
     "                     from stdin; line breaks and spaces in it are ignored\n"
     "  --alias NAME       your name for them: 1-32 of A-Z a-z 0-9 . _ -, starting with a\n"
     "                     letter or digit, not with tf1\n"
     "  --trust TRUST      close, known (the default) or acquaintance\n"
     "  --tag TAG          a tag of yours for them (a-z 0-9 -); repeat for more\n"
     "\n"
     "The card's checksum and signature are checked first: a mistyped or altered card is\n"
     "refused and nothing is stored.  A newer card of a contact you hold updates them and\n"
     "keeps your alias, trust and tags unless you give new ones; an older card is refused.\n",
     tf_cli_contact_add, NULL},
    {"list", "[--limit N] [--after ID | --before ID]", "list your contacts, a page at a time",
     "  --limit N          at most N contacts (1-1000; default 100)\n"
     "  --after ID         those after this contact's id (the next page)\n"
     "  --before ID        those before it (the previous page)\n"
     "\n"
     "Shows alias, name, trust, tags, the start of the id and when each contact was added,\n"
     "by public key.  When the page is full, says on stderr how to ask for the next one.\n",
     tf_cli_contact_list, NULL},
    {"show", "NAME|ID", "show everything about one contact, with their card", NAME_OR_ID,
     tf_cli_contact_show, NULL},
    {"set", "NAME|ID [OPTIONS]", "change a contact's alias, trust, tags or blocking",
     NAME_OR_ID "  --alias NAME       set your name for them\n"
                "  --no-alias         remove it\n"
                "  --trust TRUST      close, known or acquaintance\n"
                "  --tag TAG          replace all tags with the ones given (repeat)\n"
                "  --no-tags          remove all tags\n"
                "  --add-tag TAG      add a tag (repeat)\n"
                "  --rm-tag TAG       remove a tag (repeat)\n"
                "  --block            drop introduction proposals from them\n"
                "  --unblock          take proposals from them again\n",
     tf_cli_contact_set, NULL},
    {"rm", "NAME|ID", "remove a contact", NAME_OR_ID, tf_cli_contact_rm, NULL},
    {"block", "NAME|ID", "drop introduction proposals from a contact",
     NAME_OR_ID "\n"
                "Their proposals are dropped without asking you, whatever your policy says.\n"
                "The same as 'twofold contact set NAME|ID --block'.\n",
     tf_cli_contact_block, NULL},
    {"unblock", "NAME|ID", "take introduction proposals from a contact again",
     NAME_OR_ID "\n"
                "Their proposals go to your policy and inbox again.  The same as 'twofold\n"
                "contact set NAME|ID --unblock'.\n",
     tf_cli_contact_unblock, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct verb INTROS_VERBS[] = {
    {"rm", "INTRO", "forget an introduction you proposed that is over",
     INTRO_ARG "\n"
               "Not one still asking (withdraw it first), nor one whose closes have not left\n"
               "yet.  The contacts stay as they are.\n",
     tf_cli_intro_rm, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

/* requests */
#define REQUEST_ARG                                                                                \
    "  REQUEST            a request's id (64 hex digits), or its first 8 or more digits\n"

static const struct verb REQUESTS_VERBS[] = {
    {"show", "REQUEST", "show everything about one request", REQUEST_ARG, tf_cli_request_show,
     NULL},
    {"decline", "REQUEST", "decline a request someone sent you",
     REQUEST_ARG "\n"
                 "The asker learns only that you declined; nobody else learns anything.\n",
     tf_cli_request_decline, NULL},
    {"withdraw", "REQUEST", "withdraw a request you sent while it is open",
     REQUEST_ARG "\n"
                 "A proposal that claims to answer it afterwards is an ordinary proposal.\n",
     tf_cli_request_withdraw, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct verb INBOX_VERBS[] = {
    {"rm", "INTRO", "forget an introduction proposed to you that is over",
     INTRO_ARG "\n"
               "Not one that waits for your answer (decline it first), nor one you accepted\n"
               "while its introduction may still come.  Someone you were introduced to stays\n"
               "a contact.\n",
     tf_cli_intro_inbox_rm, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct verb POLICY_VERBS[] = {
    {"check", "[FILE]", "check a policy file for errors (no node needed)",
     "  FILE               the file to check (default: the policy file in the home)\n"
     "\n"
     "Parses the file as the node would, without loading it, and prints 'FILE: N rules,\n"
     "OK', or the first error as FILE:LINE:COLUMN: what is wrong (status 1).  With no\n"
     "policy file every proposal is put to you (ask).  See docs/POLICY.md.\n",
     tf_cli_policy_check, NULL},
    {"reload", "", "make the node read its policy file again",
     "A file with an error is refused as a whole (the message says where) and the node\n"
     "keeps the policy it had.\n",
     tf_cli_policy_reload, NULL},
    {"show", "", "print the node's active policy rules",
     "Prints each rule in canonical form after its line in the file: 'LINE: rule'.\n",
     tf_cli_policy_show, NULL},
    {"test",
     "--connector NAME|ID|unknown --topic TOPIC [--mode MODE] [--answers-request]\n"
     "                       | --requester NAME|ID|unknown --topic TOPIC",
     "ask the active policy what it would decide for an introduction",
     "  --connector NAME|ID\n"
     "                     who proposes it: a contact (alias, id or the first 6 or more\n"
     "                     characters of an id), or unknown for someone who is not one\n"
     "  --topic TOPIC      the introduction's topic, a tag (a-z 0-9 -)\n"
     "  --mode MODE        parallel (the default) or sequential\n"
     "  --answers-request  the introduction answers one of your open requests\n"
     "  --requester NAME|ID|unknown\n"
     "                     test the request rules instead: a request from this person\n"
     "                     seeking TOPIC ('propose CONTACT (policy:3)' names whom it\n"
     "                     would propose)\n"
     "\n"
     "Prints the decision and the rule that made it, as 'accept (policy:2)', or 'ask (no\n"
     "rule matched: the default)'.  Nothing is decided or counted: limits are read, not\n"
     "used.\n",
     tf_cli_policy_test, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct verb PROFILE_VERBS[] = {
    {"set",
     "[--name NAME] [--offers TAG,...] [--seeks TAG,...]\n"
     "                           [--advertise HOST:PORT,...] [--listen HOST:PORT]",
     "change your card; the node re-issues it and sends it to your contacts",
     "  --name NAME        your display name: 1-64 bytes of text without control characters\n"
     "  --offers TAG,...   what you offer, tags (a-z 0-9 -) separated by commas; they replace\n"
     "                     the ones on your card, and --offers \"\" removes them all\n"
     "  --seeks TAG,...    what you seek, the same way\n"
     "  --advertise HOST:PORT,...\n"
     "                     the addresses put on your card (at most 8)\n"
     "  --listen HOST:PORT where twofoldd listens, from its next start\n"
     "\n"
     "Give at least one option; what you leave out stays as it is.  The card gets the next\n"
     "number, and contacts keep it only if it is newer than the one they hold.\n",
     tf_cli_profile_set, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

/* mailbox: holding envelopes for others, and being reached through mailboxes. */
static const struct verb MAILBOX_VERBS[] = {
    {"host", "NAME|ID [--quota SIZE]", "hold sealed envelopes for a contact (a tenant)",
     NAME_OR_ID "  --quota SIZE       the most their envelopes may take here: bytes, or a number\n"
                "                     and K, M or G (default: the node's mailbox_tenant_bytes)\n"
                "\n"
                "Others' nodes may then leave envelopes for them here; they are pushed to the\n"
                "tenant's node whenever it is connected, and dropped once it has them.\n",
     tf_cli_mailbox_host, NULL},
    {"unhost", "NAME|ID", "stop hosting a tenant and drop what is held for them", NAME_OR_ID,
     tf_cli_mailbox_unhost, NULL},
    {"list", "", "list your tenants: envelopes and bytes held, quota, last seen",
     "With --json, one object per tenant.\n", tf_cli_mailbox_list, NULL},
    {"use", "CARD|- [--remove]", "list a mailbox on your card (at most 3)",
     "  CARD               the mailbox node's card (from 'twofold card' there), or - for stdin\n"
     "  --remove           take that mailbox off your card instead\n"
     "\n"
     "Your card is re-issued and sent to your contacts; they leave envelopes there when\n"
     "they cannot reach you directly.  The node keeps a link to each of its mailboxes.\n",
     tf_cli_mailbox_use, NULL},
    {"status", "", "show your mailboxes and whether the node is linked to each", "",
     tf_cli_mailbox_status, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

/* install: settings, read and changed without a node. */
static const struct verb CONFIG_VERBS[] = {
    {"list", "", "print every setting and its value (no node needed)",
     "Prints listen, advertise and every setting of the config file in the home, with\n"
     "the default beside a value that differs from it.\n",
     tf_cli_config_list, NULL},
    {"get", "KEY", "print one setting (no node needed)",
     "  KEY                listen, advertise or a setting 'twofold config list' shows\n",
     tf_cli_config_get, NULL},
    {"set", "KEY VALUE", "change a setting, checked as the node would (no node needed)",
     "  KEY VALUE          listen HOST:PORT: where twofoldd listens, from its next start;\n"
     "                     advertise HOST:PORT,...: the addresses on your card (at most 8);\n"
     "                     or a setting 'twofold config list' shows and a whole number\n"
     "\n"
     "HOST is a DNS name, an IPv4 address or an IPv6 address in brackets ([::1]:7451).\n"
     "Without a node, listen and advertise are written to the store (a new card goes to\n"
     "your contacts when twofoldd starts); with one, they go through it.  Other settings\n"
     "are lines of HOME/config, read by twofoldd when it starts or gets SIGHUP.  A value\n"
     "the node would refuse changes nothing.  Warns when the card advertises an address\n"
     "others could use while twofoldd listens on loopback only.\n",
     tf_cli_config_set, NULL},
    {"unset", "KEY", "put a setting of HOME/config back to its default (no node needed)",
     "  KEY                a setting 'twofold config list' shows (not listen or advertise)\n",
     tf_cli_config_unset, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct verb VERBS[] = {
    {"help", "[VERB ...]", "show help for twofold, or for one verb",
     "  VERB ...           a verb, or a group and its verb: 'twofold help contact add'\n"
     "\n"
     "The same as 'twofold VERB --help'.  A misspelt verb gets a suggestion.\n",
     cmd_help, NULL},
    {"init", "--name NAME [--listen HOST:PORT] [--advertise HOST:PORT]",
     "create the home, your identity and the store (no node needed)",
     "  --name NAME             your display name, shown on your card (required)\n"
     "  --listen HOST:PORT      where twofoldd listens (default " TF_NODE_DEFAULT_LISTEN ")\n"
     "  --advertise HOST:PORT   the address put on your card (default: the listen address)\n"
     "\n"
     "Refuses to touch a home that already holds an identity.\n",
     tf_cli_offline_init, NULL},
    {"id", "", "print your id, fingerprint and name (no node needed)",
     "Reads the store directly: works whether or not twofoldd is running.\n", tf_cli_offline_id,
     NULL},
    {"card", "[--qr]", "print your signed contact card as one line (no node needed)",
     "  --qr   also draw the card as a QR code for a phone to scan\n"
     "\n"
     "Give the card to people who want to add you: 'twofold contact add CARD'.\n",
     tf_cli_offline_card, NULL},
    {"contact", "add|list|show|set|rm|block|unblock ...", "manage your contacts", NULL, NULL,
     CONTACT_VERBS},
    {"propose",
     "A B --topic TOPIC [--note TEXT | --note-a TEXT --note-b TEXT]\n"
     "                       [--about-a TEXT] [--about-b TEXT] [--sequential]\n"
     "                       [--expires DURATION] [--wait] [--answers REQUEST]",
     "propose introducing two of your contacts to each other",
     "  A, B               the two contacts: alias, id, or the first 6 or more characters of\n"
     "                     an id\n"
     "  --topic TOPIC      what the introduction is about, a tag (a-z 0-9 -), such as\n"
     "                     real-estate-law (required)\n"
     "  --note TEXT        a note to both of them\n"
     "  --note-a TEXT      a note to A only; --note-b TEXT, to B only (not with --note)\n"
     "  --about-a TEXT     what B is told about A before A agrees (default: nothing, so\n"
     "                     that B learns who A is only once both accept); --about-b TEXT,\n"
     "                     what A is told about B\n"
     "  --sequential       ask A first, and B only once A has accepted (default: both at\n"
     "                     once)\n"
     "  --expires DURATION\n"
     "                     how long they have to answer: 90m, 12h, 14d (the default), 2w,\n"
     "                     or seconds as 3600s; at most 365d\n"
     "  --wait             then print each side's answer as it comes, until they are\n"
     "                     introduced (status 0), or the intro is declined, withdrawn or\n"
     "                     expires (status 1); Ctrl-C stops waiting (status 0)\n"
     "  --answers REQUEST  the request (sent to you) this proposal answers; the proposal to\n"
     "                     its asker names it, the other side is not told; --topic defaults\n"
     "                     to what it seeks\n"
     "\n"
     "Nobody is introduced unless both accept; a decline tells the other side only that\n"
     "the intro is closed.  Texts are at most 2000 bytes of UTF-8.  Prints the intro's short\n"
     "id and what happens next (--json: its id).\n",
     tf_cli_intro_propose, NULL},
    {"intros", "[--state STATE] [--limit N] [--before INTRO] | rm INTRO",
     "list the introductions you proposed, newest first",
     "  --state STATE      only those asking, introduced, declined, withdrawn or expired\n"
     "  --limit N          at most N of them (1-1000, default 50)\n"
     "  --before INTRO     the ones after INTRO in the list (the next page)\n"
     "\n"
     "Shows the start of each intro's id, its state and topic, both contacts with their\n"
     "answers so far (not_asked, pending, accepted or declined), and when it was proposed.\n"
     "Intros that are over are forgotten after the retention (30 days by default); 'twofold\n"
     "intros rm INTRO' forgets one now.\n",
     tf_cli_intro_list, INTROS_VERBS},
    {"show", "INTRO", "show everything about an introduction, proposed by you or to you",
     INTRO_ARG "\n"
               "One you proposed: the state, topic, mode and times, and for each side who they\n"
               "are, their answer, the notes, what they are told about each other and why one\n"
               "declined.  One proposed to you: who proposed it, the notes, your answer and who\n"
               "decided it (owner, or policy:LINE), whom it introduced you to, and the times.\n",
     tf_cli_intro_show, NULL},
    {"withdraw", "INTRO", "withdraw an introduction you proposed while it is still asking",
     INTRO_ARG "\n"
               "Both sides are told the intro is closed, and nobody is introduced.\n",
     tf_cli_intro_withdraw, NULL},
    {"inbox", "[--all] [--limit N] [--before INTRO] | rm INTRO",
     "list the introductions proposed to you that are open",
     "  --all              also those already answered, closed or expired\n"
     "  --limit N          at most N of them (1-1000, default 50)\n"
     "  --before INTRO     the ones after INTRO in the list (the next page)\n"
     "\n"
     "Open: waiting for your answer, or accepted by your policy while the outcome is open.\n"
     "Shows the start of each intro's id, who proposed it, the topic, the state, who\n"
     "decided (owner or policy:LINE), the first line of the note and of what you are told\n"
     "about the other person, and when it came; 'twofold show INTRO' and --json give the\n"
     "texts in full.  Answer with 'twofold accept' or 'twofold decline'.  Items that are\n"
     "over are forgotten after the retention (30 days by default); 'twofold inbox rm\n"
     "INTRO' forgets one now.\n",
     tf_cli_intro_inbox, INBOX_VERBS},
    {"accept", "INTRO [--note TEXT]", "accept an introduction proposed to you",
     INTRO_ARG "  --note TEXT        a note to the other person, given to them once you are both\n"
               "                     introduced (at most 2000 bytes)\n"
               "\n"
               "You are introduced only if the other person accepts too.\n",
     tf_cli_intro_accept, NULL},
    {"decline", "INTRO [--reason TEXT]", "decline an introduction proposed to you",
     INTRO_ARG "  --reason TEXT      why, for the one who proposed it only (at most 500 bytes)\n"
               "\n"
               "The other person is told only that the intro is closed.  Declining after\n"
               "accepting takes the acceptance back, if it reaches the proposer before both\n"
               "acceptances do.\n",
     tf_cli_intro_decline, NULL},
    {"message", "NAME|ID TEXT|-",
     "send a contact a message; the node delivers it in the background",
     NAME_OR_ID
     "  TEXT               1 to 4000 bytes of UTF-8 (newlines allowed); - reads it from stdin\n"
     "\n"
     "The node keeps the message in its outbox and retries until the contact's node takes\n"
     "it or it expires: see 'twofold outbox' and 'twofold messages'.\n",
     tf_cli_message_send, NULL},
    {"messages", "[NAME|ID] [--limit N] [--after ID | --before ID]",
     "list the messages sent and received, oldest first",
     "  NAME|ID            only those with this contact\n"
     "  --limit N          at most N messages (1-1000; default 100): the newest ones\n"
     "  --after ID         the ones after this message id (the next page)\n"
     "  --before ID        the ones before it (the previous page)\n"
     "\n"
     "Shows when, in or out, the contact, the state (queued, delivered, failed or received)\n"
     "and the first line of the text; --json gives the texts in full and the ids.  When\n"
     "the page is full, says on stderr how to ask for the next one.\n",
     tf_cli_message_list, NULL},
    {"outbox", "[--limit N] [--after MSGID | --before MSGID]",
     "list what the node is still trying to deliver",
     "Shows the recipient, the kind of envelope, the attempts so far, when the next one is\n"
     "due, when it expires and the last error, soonest first, a page at a time (100 unless\n"
     "--limit says otherwise; a full page ends with the command for the next one).  A\n"
     "cursor is an entry's msg_id (see --json); an entry that has left the outbox since\n"
     "cannot be one: list again from the start.\n",
     tf_cli_message_outbox, NULL},
    {"ping", "NAME|ID", "check that a contact's node answers, and how fast",
     NAME_OR_ID "\n"
                "The node connects to the contact's address, checks that the node there holds\n"
                "their key, and reports the round trip.  That may take about 15 s when the\n"
                "contact is unreachable.\n",
     tf_cli_node_ping, NULL},
    {"status", "", "show the running node: id, address, uptime, store size, counts, peers",
     "Asks the running twofoldd.  Peers are its current connections: who, their address,\n"
     "in (they called) or out, the link's state and the messages in flight on it.\n",
     tf_cli_node_status, NULL},
    {"watch", "[--since SEQ]", "print the node's events as they happen, until interrupted",
     "  --since SEQ   first replay the events numbered after SEQ (0: all of them)\n"
     "\n"
     "One event per line; with --json one JSON object per line.  Ctrl-C stops (status 0).\n",
     tf_cli_node_watch, NULL},
    {"policy", "check|reload|show|test ...",
     "check, reload, show and test your introduction policy", NULL, NULL, POLICY_VERBS},
    {"backup", "FILE [--passphrase-file FILE | --passphrase-env VAR] [--force]",
     "write an encrypted backup of your identity, store, config and policy (no node needed)",
     "  FILE               the backup to write (mode 0600); an existing one is refused\n"
     "  --passphrase-file FILE\n"
     "                     read the passphrase from the first line of FILE, for scripts\n"
     "                     (default: ask twice on the terminal, without echo)\n"
     "  --passphrase-env VAR\n"
     "                     read it from the environment variable VAR\n"
     "  --force            replace FILE if it exists (never one inside the home)\n"
     "\n"
     "Works while twofoldd runs: the store is copied from one consistent snapshot and the\n"
     "node is not paused.  The backup is encrypted with a key derived from the passphrase\n"
     "(12 to 1024 bytes; Argon2id, 256 MiB) and authenticated: a wrong passphrase and a damaged\n"
     "file are refused at restore.  It holds your secret key: keep it as safe as the home.\n",
     tf_cli_backup_write, NULL},
    {"restore", "FILE [HOME] [--passphrase-file FILE | --passphrase-env VAR]",
     "make a new home from a backup (no node needed)",
     "  FILE               a backup written by 'twofold backup'\n"
     "  HOME               the new home (default: --home, $TWOFOLD_HOME, ...); it must not\n"
     "                     exist or be an empty directory\n"
     "  --passphrase-file FILE, --passphrase-env VAR\n"
     "                     as for backup (default: ask on the terminal)\n"
     "\n"
     "The whole backup is decrypted and checked before anything is written, and the home\n"
     "appears only once complete: a wrong passphrase or a damaged backup leaves nothing.\n"
     "Run only one node per identity: stop the old node for good before starting the\n"
     "restored one (two live copies answer and send with one key, and their states split).\n",
     tf_cli_backup_restore, NULL},
    {"profile", "[set ...]", "show your own card as the running node holds it",
     "Shows your id, name, addresses, offers, seeks, the card's number, when it was issued,\n"
     "where the node listens, and the card itself.  'twofold profile set --help' tells how\n"
     "to change it.\n",
     tf_cli_profile_show, PROFILE_VERBS},
    /* web (issue 18): the node's local web page. */
    {"web", "[--listen HOST:PORT [--allow-remote]] [--open]",
     "serve your node's page in your browser (on this machine only)",
     "  --listen HOST:PORT  where to listen (default 127.0.0.1:0, a free port)\n"
     "  --allow-remote      allow a --listen address that is not loopback (plain HTTP)\n"
     "  --open              also open the page in the desktop's browser\n"
     "\n"
     "Prints the page's address with a secret that signs your browser in; stop with\n"
     "Ctrl-C.  The page talks to the node only through its control socket.\n",
     tf_cli_web_verb, NULL},
    /* requests */
    {"ask", "CONNECTOR --seeking TAG [--note TEXT] [--expires DURATION]",
     "ask a contact to introduce you to someone who offers TAG",
     "  CONNECTOR          the contact to ask: alias, id, or the first 6 or more characters\n"
     "  --seeking TAG      what you look for, a tag (a-z 0-9 -), such as real-estate-law\n"
     "  --note TEXT        a note to the connector (at most 2000 bytes)\n"
     "  --expires DURATION how long the request stays open: 12h, 14d (the default), 2w;\n"
     "                     at most 90d\n"
     "\n"
     "The request is signed and sealed for the connector only.  They may answer with a\n"
     "proposal (which names your request), decline (you learn only that), or let it\n"
     "expire; 'twofold requests' shows where it stands.  Prints the request's id.\n",
     tf_cli_request_ask, NULL},
    {"requests", "[--limit N] [--after ID] | [show|decline|withdraw REQUEST]",
     "list the requests for introductions you sent and received",
     "Shows the start of each request's id, sent or received, the other person, the topic,\n"
     "the state (open, answered, declined, expired or withdrawn) and when it expires.\n"
     "Answer a received one with 'twofold propose A B --answers REQUEST'.  Pages of\n"
     "--limit N (default 100); a full page says how to get the next one (--after ID).\n",
     tf_cli_request_list, REQUESTS_VERBS},
    {"suggest", "[--for CONTACT] [--topic TAG] [--limit N]",
     "suggest introductions: contacts who seek what another contact offers",
     "  --for CONTACT      only pairs with this contact on either side\n"
     "  --topic TAG        only this topic\n"
     "  --limit N          at most N suggestions (1-1000, default 50)\n"
     "\n"
     "From your contacts' current cards: a pair where one seeks a topic the other offers.\n"
     "Best first, by score: 100 when the seeker has an open request to you for the topic,\n"
     "plus 10 x the sum of both trust levels (acquaintance 1, known 2, close 3), plus for\n"
     "each card 5 if issued in the last 30 days or 2 in the last 180; ties by topic, then\n"
     "the seeker's and the offerer's id.  Left out: blocked contacts, and pairs you\n"
     "introduced, with an intro still asking, or with one declined in the last 90 days.\n"
     "Nothing is proposed: each line shows the command that would.\n",
     tf_cli_request_suggest, NULL},
    {"feedback", "INTRO --helped yes|no [--note TEXT]",
     "tell the connector whether an introduction helped you",
     INTRO_ARG "  --helped yes|no    whether it helped\n"
               "  --note TEXT        a few words for the connector (at most 500 bytes)\n"
               "\n"
               "Once per introduction, and only for one that introduced you.  The connector\n"
               "alone sees it, in their statistics of you ('twofold contact show').  Your node\n"
               "counts it too: a policy can say 'accept when connector helped >= 2'.\n",
     tf_cli_request_feedback, NULL},
    {"mailbox", "host|unhost|list|use|status ...",
     "hold envelopes for others, or be reached through mailboxes", NULL, NULL, MAILBOX_VERBS},
    {"config", "list|get|set|unset ...", "read and change the node's settings (no node needed)",
     NULL, NULL, CONFIG_VERBS},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const char GLOBAL_HELP[] =
    "global options (before or after the verb):\n"
    "  --home DIR   the node's home; default $TWOFOLD_HOME, else $XDG_DATA_HOME/twofold,\n"
    "               else ~/.local/share/twofold\n"
    "  --json       print JSON for scripts\n"
    "  --help, -h   show help; after a verb, that verb's help\n"
    "  --version    print the version and exit\n";

/* Lists a group's verbs, sub-verbs flattened ("contact add"). */
static void list_verbs(FILE *out, const struct verb *table, const char *prefix)
{
    for (const struct verb *v = table; v->name != NULL; v++) {
        char name[64];
        int n = snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? " " : "", v->name);
        /* Verb names are a few words of the tables above: this never cuts. */
        if (n < 0 || (size_t)n >= sizeof name)
            continue;
        if (v->fn != NULL)
            fprintf(out, "  %-16s %s\n", name, v->summary);
        if (v->group != NULL)
            list_verbs(out, v->group, name);
    }
}

/* cli->cmd is "twofold" or "twofold contact"; prefix is what follows "twofold". */
static void group_help(FILE *out, const struct verb *table, const char *cmd, const char *prefix)
{
    fprintf(out, "usage: %s [--home DIR] [--json] VERB [ARGS...]\n\n", cmd);
    if (prefix[0] == '\0')
        fprintf(out, "twofold talks to twofoldd, your node for double opt-in introductions:\n"
                     "nobody is introduced to anyone without both saying yes.\n\n");
    fprintf(out, "verbs:\n");
    list_verbs(out, table, prefix);
    fprintf(out, "\n%s\nEach verb has --help; see also twofold(1).\n", GLOBAL_HELP);
}

static void verb_help(const struct verb *v, const char *cmd)
{
    printf("usage: %s%s%s\n\n%c%s.\n", cmd, v->synopsis[0] ? " " : "", v->synopsis,
           v->summary[0] >= 'a' && v->summary[0] <= 'z' ? v->summary[0] - 'a' + 'A' : v->summary[0],
           v->summary + 1);
    if (v->details != NULL)
        printf("\n%s", v->details);
    printf("\nglobal options: --home DIR, --json, --help\n");
}

/* True if "--help" or "-h" comes before any "--". */
static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

/* True if name is one of table's verbs. */
static bool names_verb(const struct verb *table, const char *name)
{
    for (const struct verb *v = table; v->name != NULL; v++)
        if (strcmp(v->name, name) == 0)
            return true;
    return false;
}

/* The verb of table called name, or NULL. */
static const struct verb *find_verb(const struct verb *table, const char *name)
{
    for (const struct verb *v = table; v->name != NULL; v++)
        if (strcmp(v->name, name) == 0)
            return v;
    return NULL;
}

/* "unknown verb 'contcat' (did you mean 'contact'?)": the nearest verbs of
 * the table, by edit distance (proto/ctl.h). */
static int unknown_verb(const struct tf_cli *cli, const struct verb *table, const char *name)
{
    char near[256] = "";
    size_t used = 0;
    for (const struct verb *v = table; v->name != NULL; v++) {
        if (!tf_proto_ctl_is_near(name, strlen(name), v->name, strlen(v->name)))
            continue;
        int n = snprintf(near + used, sizeof near - used, "%s'%s'", used ? " or " : "", v->name);
        if (n < 0 || (size_t)n >= sizeof near - used)
            break;
        used += (size_t)n;
    }
    if (used > 0)
        return tf_cli_args_usage_error(cli, "unknown verb '%s' (did you mean %s?)", name, near);
    return tf_cli_args_usage_error(cli, "unknown verb '%s'", name);
}

/* twofold help [VERB ...]: walks the tables as dispatch would, then prints
 * the group's list or the verb's help. */
static int cmd_help(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_args a;
    char cmd[128] = "twofold", prefix[96] = "";
    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 0, 4, "") != 0)
        return TF_CLI_EXIT_USAGE;
    const struct verb *table = VERBS, *v = NULL;
    cli->cmd = "twofold help";
    for (size_t i = 0; i < a.n_pos; i++) {
        if (table == NULL)
            return tf_cli_args_usage_error(cli, "'%s' has no verbs under it", cmd + 8);
        if ((v = find_verb(table, a.pos[i])) == NULL)
            return unknown_verb(cli, table, a.pos[i]);
        size_t len = strlen(cmd);
        snprintf(cmd + len, sizeof cmd - len, " %s", v->name);
        len = strlen(prefix);
        snprintf(prefix + len, sizeof prefix - len, "%s%s", len ? " " : "", v->name);
        table = v->group;
    }
    if (v != NULL && (v->group == NULL || v->fn != NULL))
        verb_help(v, cmd);
    else
        group_help(stdout, v != NULL ? v->group : VERBS, cmd, prefix);
    return TF_CLI_EXIT_OK;
}

enum { OPT_VERSION = 1 };

/* Finds and runs the verb named in argv (after any global options). */
static int dispatch(struct tf_cli *cli, const struct verb *table, const char *prefix, int argc,
                    char **argv)
{
    static const struct tf_cli_opt top_opts[] = {{"version", false, OPT_VERSION}, {NULL, false, 0}};
    struct tf_cli_args a;
    const char *val;
    char cmd[96];
    int id;

    tf_cli_args_init(&a, cli, argc, argv, prefix[0] == '\0' ? top_opts : NULL);
    a.stop_at_positional = true;
    while ((id = tf_cli_args_next(&a, &val)) > 0) {
        printf("twofold %s\n", TF_VERSION);
        return TF_CLI_EXIT_OK;
    }
    if (id < 0)
        return TF_CLI_EXIT_USAGE;
    if (a.help) {
        group_help(stdout, table, cli->cmd, prefix);
        return TF_CLI_EXIT_OK;
    }
    if (a.next == argc) {
        group_help(stderr, table, cli->cmd, prefix);
        return TF_CLI_EXIT_USAGE;
    }
    const char *name = argv[a.next];
    const struct verb *v = find_verb(table, name);
    if (v == NULL)
        return unknown_verb(cli, table, name);

    char sub[64];
    snprintf(cmd, sizeof cmd, "%s %s", cli->cmd, v->name);
    snprintf(sub, sizeof sub, "%s%s%s", prefix, prefix[0] ? " " : "", v->name);
    cli->cmd = cmd;
    argc -= a.next + 1;
    argv += a.next + 1;
    if (v->group != NULL && (v->fn == NULL || (argc > 0 && names_verb(v->group, argv[0]))))
        return dispatch(cli, v->group, sub, argc, argv);
    if (wants_help(argc, argv)) {
        verb_help(v, cmd);
        return TF_CLI_EXIT_OK;
    }
    return v->fn(cli, argc, argv);
}

int main(int argc, char **argv)
{
    struct tf_cli cli;
    memset(&cli, 0, sizeof cli);
    cli.cmd = "twofold";
    /* https://no-color.org: colour only for a terminal, never with NO_COLOR. */
    cli.color = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;
    /* --json anywhere before "--" makes even a failure to find the verb
     * print its JSON error object. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        cli.json |= strcmp(argv[i], "--json") == 0;
    if (sodium_init() < 0)
        return tf_cli_render_fail(&cli, TF_CLI_EXIT_LOCAL, "libsodium failed to initialise");
    int rc = dispatch(&cli, VERBS, "", argc - 1, argv + 1);
    /* Report a full disk or closed pipe rather than exiting 0 with lost output. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli.cmd = "twofold";
        if (rc == TF_CLI_EXIT_OK)
            rc = tf_cli_render_fail(&cli, TF_CLI_EXIT_LOCAL, "cannot write the output");
    }
    return rc;
}
