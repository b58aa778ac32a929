/*
 * Decant's live-migration phase protocol (src/migration/), one key, two replicas, a
 * controller (SetPhase + backfill + verify), a reader, and at most one fault.
 * docs/PROTOCOL.md gives the argument in words; model/README.md maps each step to the code.
 *
 *   spin -a -DFAULT=n [-DBUGk] migration.pml && gcc -O2 -DCOLLAPSE -o pan pan.c && ./pan
 *
 * FAULT: 0 none, 1 crash (replica 0 between any two steps, or the controller mid-fence),
 *        2 partition of replica 0 from the control store, 3 pause of replica 0 beyond the TTL,
 *        4 clock skew of replica 0, 5 one ambiguous store call (primary put or secondary
 *        applyIfNewer) that may land later unless the store fence refuses it.
 * BUGk reverts the fix of finding k of issue 12 (reproduces the pre-fix code).
 * Properties: P1 (COMPLETE target holds the highest acknowledged write), P2 (one version,
 * one acknowledged value), P3 (a read returns the highest write acknowledged before it).
 */

#ifndef FAULT
#define FAULT 0
#endif
#ifndef BUG1
#define BUG1 0
#endif
#ifndef BUG2
#define BUG2 0
#endif
#ifndef BUG3
#define BUG3 0
#endif
#ifndef BUG4
#define BUG4 0
#endif
#ifndef BUG5
#define BUG5 0
#endif
#ifndef BUG6
#define BUG6 0
#endif
/* One rollback to SINGLE before READ_TARGET and a second attempt (needed for finding 5). */
#ifndef RESTART
#define RESTART 0
#endif
/* Rollback across the fence (TARGET_PRIMARY -> READ_TARGET, then on or back to SINGLE). */
#ifndef ROLLBACK
#define ROLLBACK 1
#endif
/* Reads refuse on a lapsed lease, like writes. */
#ifndef READ_LEASE
#define READ_LEASE 0
#endif
/* A rollback from READ_TARGET to SINGLE passes through SHADOW_READ and waits until it is
   active, so no replica still reads the target while writes stop reaching it (model finding). */
#ifndef RBFIX
#define RBFIX 0
#endif

#define NR 2
#define CUR 0
#define TGT 1

#define SINGLE 0
#define DUAL 1
#define SHADOW 2
#define RT 3
#define TP 4
#define COMPLETE 5

/* phases.ts ROLES */
#define PRIM(p)   (((p) <= RT) -> CUR : TGT)
#define HASSEC(p) ((p) != SINGLE && (p) != COMPLETE)
#define SEC(p)    (((p) <= RT) -> TGT : CUR)
#define READS(p)  (((p) <= SHADOW) -> CUR : TGT)
/* A failed secondary write fails the request (fix 4: from SHADOW_READ on, before reads move). */
#define SECFAILS(p) (BUG4 -> ((p) == RT) : ((p) == SHADOW || (p) == RT))

/* ---- the two data stores: the key's (version, value), and the store-side fence epoch ---- */
byte stv[2];
byte sval[2];
byte sfence[2];

/* ---- the control store ---- */
byte rphase = SINGLE;   /* phase record */
byte repoch = 0;
bool rfence = 0;
bool rexpired = 0;      /* the fence's deadline has passed */
byte rattempt = 0;
byte hack[NR];          /* heartbeat: acknowledged epoch */
byte hfail[NR];         /* heartbeat: verify generation of the last secondary failure */
bool jr[NR];            /* repair journal: one intent per write (fixed) / one entry per failure (BUG2) */
byte bfatt;             /* backfill record: attempt whose backfill is done */
byte vratt;             /* verify record: attempt, result, started after SHADOW_READ active, generation */
bool vrok;
bool vrafter;
byte vrgen;
byte vgen = 1;          /* verify generations (stands for startedAt) */

/* ---- replica-local state ---- */
byte vphase[NR];        /* cached view of the record */
byte vepoch[NR];
bool vfence[NR];
bool stale[NR];         /* lease lapsed (own monotonic clock) */
bool busy[NR];          /* a write admitted and not done */
byte admep[NR];         /* ... under this epoch */
byte lfail[NR];         /* failure stamp, persisted */

/* ---- faults (on replica 0, by symmetry) ---- */
bool faulted;
bool crashed[NR];
bool paused[NR];
bool parted[NR];
bool dead[NR];          /* as the observers judge it */
bool skewed;
bool cdead;             /* the controller (fencer) died */
bool pend;              /* an ambiguous request still on its way to a store */
bit  pkind;             /* 0 primary put (fenced by epoch), 1 secondary applyIfNewer */
byte pstore;
byte pep;
byte pver;
byte pval;

/* ---- what clients were told ---- */
short ackedmask = 2;    /* versions acknowledged (v1 = the preloaded value) */
byte maxack = 1;
byte maxval = 9;
bool cdone;
bool go;

#define ISACTIVE(e) ((dead[0] || hack[0] >= (e)) && (dead[1] || hack[1] >= (e)))
#define HOLDS(s)    (stv[s] > maxack || (stv[s] == maxack && sval[s] == maxval))
#define UP(r)       (!paused[r])
/* Acknowledge the record's epoch only with no write of an older epoch in flight (fix 1). */
#define ACKOK(r)    (BUG1 -> (!rfence || !busy[r]) : !(busy[r] && admep[r] < repoch))
#define REPAIRABLE(r, e) (jr[e] && (BUG2 || ((e) == (r) && !busy[r]) || dead[e]))

/* ---------------------------------------------------------------- writer (migrating-store.ts write) */
proctype writer(byte r; byte val) {
  byte ph, ep, P, S, v;
  bool ok;
  /* admitWrite: fresh lease, no fence (held until it lifts), counted in flight under its epoch */
  atomic { UP(r) && (crashed[r] || stale[r] || !vfence[r]) ->
    if
    :: crashed[r] || stale[r] -> goto gone
    :: else -> busy[r] = 1; ph = vphase[r]; ep = vepoch[r]; admep[r] = ep; P = PRIM(ph); S = SEC(ph);
       printf("@ w%d admitted ph%d e%d\n", r, ph, ep)
    fi }
  /* intent before the primary write whenever there is a secondary (fix 2) */
  if
  :: HASSEC(ph) && !BUG2 ->
    atomic { UP(r) ->
      if
      :: crashed[r] -> goto gone
      :: parted[r] -> goto done          /* intent cannot be written: refused, nothing written */
      :: else -> jr[r] = 1; printf("@ w%d intent\n", r)
      fi }
  :: else -> skip
  fi;
  /* primary write: the store assigns stored+1, refused below the store fence (fix 3) */
  atomic { UP(r) ->
    if
    :: crashed[r] -> goto gone
    :: else -> skip
    fi;
    if
    :: FAULT == 5 && !faulted -> faulted = 1; pend = 1; pkind = 0; pstore = P; pep = ep; pval = val; printf("@ w%d primary s%d AMBIGUOUS\n", r, P);
       goto done                           /* outcome unknown: error to the client */
    :: true ->
      if
      :: !BUG3 && sfence[P] > ep -> printf("@ w%d primary s%d FENCED\n", r, P); goto done
      :: else -> stv[P] = stv[P] + 1; sval[P] = val; v = stv[P]; printf("@ w%d primary s%d v%d\n", r, P, v)
      fi
    fi }
  if
  :: !HASSEC(ph) -> goto ack
  :: else -> skip
  fi;
  /* lease re-check after the primary write (fix 3), then the secondary applyIfNewer */
  atomic { UP(r) ->
    if
    :: crashed[r] -> goto gone
    :: !BUG3 && stale[r] -> printf("@ w%d lease lapsed after primary\n", r); goto done
    :: else -> skip
    fi;
    if
    :: FAULT == 5 && !faulted -> faulted = 1; pend = 1; pkind = 1; pstore = S; pver = v; pval = val; ok = 0; printf("@ w%d secondary AMBIGUOUS\n", r)
    :: true ->
      if
      :: v > stv[S] -> stv[S] = v; sval[S] = val; ok = 1; printf("@ w%d secondary s%d v%d\n", r, S, v)
      :: else -> ok = BUG2; printf("@ w%d secondary s%d false\n", r, S)                /* false: a divergence sign (pre-fix: ignored) */
      fi
    fi }
  if
  :: ok ->
    atomic { UP(r) ->
      if
      :: crashed[r] -> goto gone
      :: else -> if :: !parted[r] -> jr[r] = 0 :: else -> skip fi; goto ack
      fi }
  :: else ->
    lfail[r] = vgen;
    if
    :: BUG2 ->                            /* pre-fix: journal only now, after the failure */
      atomic { UP(r) ->
        if
        :: crashed[r] -> goto gone
        :: parted[r] -> goto done
        :: else -> jr[r] = 1
        fi }
    :: else -> skip
    fi;
    if
    :: SECFAILS(ph) -> goto done
    :: else -> goto ack
    fi
  fi;
ack:
  atomic { UP(r) ->
    if
    :: crashed[r] -> goto gone
    :: else ->
      assert(!(ackedmask & (1 << v)));    /* P2 */
      ackedmask = ackedmask | (1 << v); printf("@ w%d ACK v%d val%d\n", r, v, val);
      if
      :: v > maxack -> maxack = v; maxval = val
      :: else -> skip
      fi
    fi }
done:
  busy[r] = 0;
gone:
  skip
}

/* ------------------------------------------------- replica loop (controller.ts tick, housekeeping) */
proctype replica(byte r) {
  byte e, rph, rv, rvl;
end_loop:
  do
  :: crashed[r] -> break
  /* tick: read the record, adopt it, acknowledge if allowed, heartbeat, renew the lease (one
     step: the view and the acknowledgement come from the same read) */
  :: atomic { UP(r) && !crashed[r] && !parted[r] &&
              (vepoch[r] != repoch || stale[r] || dead[r] || hfail[r] != lfail[r] ||
               (ACKOK(r) && hack[r] != repoch)) ->
       vphase[r] = rphase; vepoch[r] = repoch; vfence[r] = rfence;
       if
       :: ACKOK(r) -> hack[r] = repoch; printf("@ r%d acks e%d\n", r, repoch)
       :: else -> skip
       fi;
       hfail[r] = lfail[r]; stale[r] = 0;
       if
       :: !(BUG3 && skewed && r == 0) -> dead[r] = 0    /* its heartbeat moved: live again */
       :: else -> skip
       fi }
  /* an expired fence is rolled back by the next replica that sees it (fix 6) */
  :: atomic { !BUG6 && UP(r) && !crashed[r] && !parted[r] && rfence && rexpired ->
       repoch++; rfence = 0; rexpired = 0; vratt = 0; printf("@ r%d rolls back expired fence\n", r) }
  /* repairJournal: own settled intents, and those of dead replicas */
  :: atomic { UP(r) && !crashed[r] && !parted[r] && (REPAIRABLE(r, 0) || REPAIRABLE(r, 1)) ->
       if
       :: REPAIRABLE(r, 0) -> e = 0
       :: REPAIRABLE(r, 1) -> e = 1
       fi;
       rph = vphase[r]; rv = stv[PRIM(rph)]; rvl = sval[PRIM(rph)] }
     atomic { UP(r) ->
       if
       :: crashed[r] || parted[r] -> skip
       :: else ->
         if
         :: HASSEC(rph) && rv > stv[SEC(rph)] -> stv[SEC(rph)] = rv; sval[SEC(rph)] = rvl
         :: else -> skip
         fi;
         jr[e] = 0; printf("@ r%d repairs j%d v%d\n", r, e, rv)
       fi }
  od
}

/* ---------------------------------------------------------------- controller (setPhase and friends) */
inline plain(to) {   /* a step that does not move the primary (commit: compare-and-set) */
  repoch++; rphase = to; printf("@ phase %d e%d\n", to, repoch)
}

inline repair_all(ph) {   /* repairJournal(ph, all) by the fencer / before COMPLETE */
  do
  :: atomic { (jr[0] || jr[1]) ->
       if
       :: jr[0] -> e = 0
       :: jr[1] -> e = 1
       fi;
       rv = stv[PRIM(ph)]; rvl = sval[PRIM(ph)] }
     atomic {
       if
       :: HASSEC(ph) && rv > stv[SEC(ph)] -> stv[SEC(ph)] = rv; sval[SEC(ph)] = rvl
       :: else -> skip
       fi;
       jr[e] = 0; printf("@ drain j%d v%d\n", e, rv) }
  :: else -> break
  od
}

/* fencedSwitch: fence with a deadline, raise the old primary's store fence, wait for every live
   replica's ack, drain the journal, commit; any failure rolls back with a new epoch. */
inline fenced(from, to) {
  atomic { repoch++; rfence = 1; rexpired = 0; fe = repoch; printf("@ fence e%d\n", fe) }
  if
  :: FAULT == 1 && !faulted -> faulted = 1; cdead = 1; printf("@ FAULT controller dies\n"); goto cend
  :: true -> skip
  fi;
  if
  :: !BUG3 -> sfence[PRIM(from)] = fe; printf("@ store fence s%d e%d\n", PRIM(from), fe)
  :: else -> skip
  fi;
  if
  :: ISACTIVE(fe) -> ok = 1
  :: rexpired -> ok = 0
  fi;
  if
  :: ok ->
     repair_all(from);
     atomic {
       if
       :: !jr[0] && !jr[1] && rfence && repoch == fe -> repoch++; rphase = to; rfence = 0; printf("@ switched to %d e%d\n", to, repoch)
       :: else -> ok = 0
       fi }
  :: else -> skip
  fi;
  if
  :: !ok -> atomic {
       if
       :: rfence && repoch == fe -> repoch++; rfence = 0; vratt = 0; printf("@ fence rolled back e%d\n", repoch)
       :: else -> skip
       fi }
  :: else -> skip
  fi
}

proctype controller() {
  byte fe, e, rv, rvl, shep, cv, cvl, tv, tvl, tries;
  bool ok, after;
attempt:
  /* SINGLE -> DUAL_WRITE: empty target (force clears it), new attempt, records cleared (fix 5) */
  atomic {
    stv[TGT] = 0; sval[TGT] = 0;
    rattempt++;
    if
    :: !BUG5 -> bfatt = 0; vratt = 0; vrok = 0
    :: else -> skip
    fi;
    plain(DUAL); e = repoch }
  /* the backfill starts once DUAL_WRITE is active (backfill.ts start) */
  ISACTIVE(e);
  if
  :: rattempt > 1 -> skip                  /* the operator skips it (finding 5's path) */
  :: true ->
     atomic { rv = stv[CUR]; rvl = sval[CUR] }               /* scanRaw */
     atomic {                                               /* applyIfNewer, checkpoint done */
       if
       :: rv > stv[TGT] -> stv[TGT] = rv; sval[TGT] = rvl
       :: else -> skip
       fi;
       bfatt = rattempt; printf("@ backfill v%d\n", rv) }
  fi;
  atomic { plain(SHADOW); shep = repoch }
  /* verify (verify.ts): compare both stores, re-check a difference once */
  if
  :: rattempt > 1 -> skip
  :: true ->
     atomic { vgen++; tries = 0; after = ISACTIVE(shep) }
again:
     atomic { cv = stv[CUR]; cvl = sval[CUR] }
     atomic { tv = stv[TGT]; tvl = sval[TGT] }
     if
     :: (cv != tv || cvl != tvl) && tries == 0 -> tries++; goto again
     :: else -> skip
     fi;
     atomic { vratt = rattempt; vrok = (cv == tv && cvl == tvl); vrafter = after; vrgen = vgen; printf("@ verify ok=%d\n", vrok) }
  fi;
  if
  :: RESTART && rattempt == 1 ->           /* roll back to SINGLE and start again */
     atomic { plain(SINGLE); vratt = 0; jr[0] = 0; jr[1] = 0 }
     goto attempt
  :: true -> skip
  fi;
  /* SHADOW_READ -> READ_TARGET: checkVerified (fix 4: SHADOW_READ active; fix 5: this attempt) */
  if
  :: !BUG4 -> ISACTIVE(shep)
  :: else -> skip
  fi;
  atomic {
    if
    :: vrok && hfail[0] < vrgen && hfail[1] < vrgen && !jr[0] && !jr[1] &&
       (BUG5 || (vratt == rattempt && bfatt == rattempt)) && (BUG4 || vrafter) -> plain(RT)
    :: else -> goto cend
    fi }
  fenced(RT, TP);
  if
  :: !ok -> goto cend
  :: else -> skip
  fi;
  if
  :: ROLLBACK ->
     fenced(TP, RT);
     if
     :: !ok -> goto cend
     :: else -> skip
     fi;
     if
     :: if
        :: RBFIX -> atomic { plain(SHADOW); shep = repoch }; ISACTIVE(shep)
        :: else -> skip
        fi;
        atomic { plain(SINGLE); vratt = 0 }            /* RT -> SINGLE: the primary stays */
        repair_all(SINGLE);
        goto cend
     :: fenced(RT, TP);
        if
        :: !ok -> goto cend
        :: else -> skip
        fi
     fi
  :: true -> skip
  fi;
  /* TARGET_PRIMARY -> COMPLETE: drain first, refuse if anything is left */
  repair_all(TP);
  atomic {
    if
    :: !jr[0] && !jr[1] -> plain(COMPLETE)
    :: else -> skip
    fi }
cend:
  cdone = 1
}

/* ---------------------------------------------------------------- reads (migrating-store.ts get)
   P3 as an invariant: a read that any replica serves at any moment, on the store its view says,
   returns the highest acknowledged write (or a later one). Checked after every step; equivalent
   to a reader process that may read at any moment, as often as it likes. */
#define CANREAD(r) (!paused[r] && !crashed[r] && !(READ_LEASE && stale[r]))
#define P3 (!go || ((!CANREAD(0) || HOLDS(READS(vphase[0]))) && (!CANREAD(1) || HOLDS(READS(vphase[1])))))
never {
  do
  :: !P3 -> break
  :: else -> skip
  od
}

/* ---------------------------------------------------------------- faults, time, late requests */
proctype env() {
end_env:
  do
  :: FAULT == 1 && !faulted -> atomic { faulted = 1; crashed[0] = 1; printf("@ FAULT r0 crashes\n") }
  :: atomic { FAULT == 2 && !faulted -> faulted = 1; parted[0] = 1; printf("@ FAULT r0 partitioned\n") }
  :: atomic { FAULT == 3 && !faulted -> faulted = 1; paused[0] = 1; printf("@ FAULT r0 paused\n") }
  :: atomic { FAULT == 4 && !faulted -> faulted = 1; skewed = 1; printf("@ FAULT r0 clock skewed\n") }
  /* the lease lapses on a replica that cannot renew */
  :: atomic { (parted[0] || paused[0]) && !stale[0] -> stale[0] = 1 }
  /* observers count it dead: no heartbeat for the TTL (> lease + store timeout), or, pre-fix,
     a timestamp from a skewed clock */
  :: atomic { !dead[0] && (crashed[0] || ((parted[0] || paused[0]) && stale[0]) || (BUG3 && skewed)) -> dead[0] = 1; printf("@ r0 counted dead\n") }
  :: atomic { paused[0] && dead[0] -> paused[0] = 0; printf("@ r0 resumes\n") }   /* resumes after the TTL */
  :: atomic { parted[0] && dead[0] -> parted[0] = 0; printf("@ r0 partition heals\n") }   /* heals */
  /* an ambiguous request lands late (the store fence refuses a stale primary put), or never */
  :: atomic { pend -> pend = 0;
       if
       :: pkind == 0 && (BUG3 || sfence[pstore] <= pep) -> stv[pstore] = stv[pstore] + 1; sval[pstore] = pval; printf("@ late put lands s%d v%d\n", pstore, stv[pstore])
       :: pkind == 1 && pver > stv[pstore] -> stv[pstore] = pver; sval[pstore] = pval; printf("@ late apply lands s%d v%d\n", pstore, pver)
       :: else -> skip
       fi }
  :: atomic { pend -> pend = 0 }
  :: atomic { rfence && !rexpired -> rexpired = 1 }    /* the fence's deadline passes */
  :: timeout ->
     /* quiescent: the fence does not stay set (fix 6), P1 when COMPLETE */
     assert(!rfence);
     assert(rphase != COMPLETE || HOLDS(TGT));
     break
  od
}

init {
  atomic {
    stv[CUR] = 1; sval[CUR] = 9;   /* the key, preloaded at v1 */
    go = 1;
    run env();
    run controller();
    run replica(0); run replica(1);
    run writer(0, 1); run writer(1, 2)
  }
}
