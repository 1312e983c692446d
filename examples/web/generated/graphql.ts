export type Maybe<T> = T | null;
export type InputMaybe<T> = Maybe<T>;
export type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
export type MakeOptional<T, K extends keyof T> = Omit<T, K> & { [SubKey in K]?: Maybe<T[SubKey]> };
export type MakeMaybe<T, K extends keyof T> = Omit<T, K> & { [SubKey in K]: Maybe<T[SubKey]> };
export type MakeEmpty<T extends { [key: string]: unknown }, K extends keyof T> = { [_ in K]?: never };
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
/** All built-in and custom scalars, mapped to their actual values */
export type Scalars = {
  ID: { input: string; output: string; }
  String: { input: string; output: string; }
  Boolean: { input: boolean; output: boolean; }
  Int: { input: number; output: number; }
  Float: { input: number; output: number; }
  /** Date with time (isoformat) */
  DateTime: { input: any; output: any; }
  /** The `JSON` scalar type represents JSON values as specified by [ECMA-404](https://ecma-international.org/wp-content/uploads/ECMA-404_2nd_edition_december_2017.pdf). */
  JSON: { input: any; output: any; }
  /** An embedding: a JSON array of numbers, e.g. `[0.12, -0.5, 0.33]`. */
  Vector: { input: number[]; output: number[]; }
};

/** A recommendation algorithm installed by a plugin. */
export type AlgorithmInfo = {
  /** JSON Schema of its config. */
  configSchema: Scalars['JSON']['output'];
  description: Scalars['String']['output'];
  metrics: Maybe<Scalars['JSON']['output']>;
  /** The config the current model serves with: its training config, settings chosen at training included (requests may override serving options). */
  modelConfig: Maybe<Scalars['JSON']['output']>;
  modelVersion: Maybe<Scalars['Int']['output']>;
  name: Scalars['String']['output'];
  plugin: Scalars['String']['output'];
  trainedAt: Maybe<Scalars['DateTime']['output']>;
  /** Config keys that only change by training (modelTrain). */
  trainingOptions: Array<Scalars['String']['output']>;
};

/** An algorithm or preset to use, its weight and config changes. */
export type AlgorithmInput = {
  /** Overrides of the algorithm's serving options. */
  config: InputMaybe<Scalars['JSON']['input']>;
  name: Scalars['String']['input'];
  weight: Scalars['Float']['input'];
};

/** An API key of your tenant (the secret is shown only once). */
export type ApiKey = {
  /** Origins (`https://shop.example`, or `*`) whose web pages may call the API with this key (CORS). Empty: none; server-side callers send no origin. */
  allowedOrigins: Array<Scalars['String']['output']>;
  createdAt: Scalars['DateTime']['output'];
  name: Scalars['String']['output'];
  /** Identifies the key; not a secret. */
  prefix: Scalars['String']['output'];
  revokedAt: Maybe<Scalars['DateTime']['output']>;
  scopes: Array<Scalars['String']['output']>;
};

export type ApiKeyCreateInput = {
  /** Origins whose web pages may use the key, e.g. `https://shop.example`. */
  allowedOrigins: Array<Scalars['String']['input']>;
  name: Scalars['String']['input'];
  scopes: Array<ApiKeyScope>;
};

export type ApiKeyCreatePayload = {
  apiKey: Maybe<ApiKey>;
  /** Store it now; it cannot be shown again. */
  secret: Maybe<Scalars['String']['output']>;
  userErrors: Array<UserError>;
};

export type ApiKeyRevokeInput = {
  prefix: Scalars['String']['input'];
};

export type ApiKeyRevokePayload = {
  revokedPrefix: Maybe<Scalars['String']['output']>;
  userErrors: Array<UserError>;
};

/** What a key may do. */
export type ApiKeyScope =
  | 'ADMIN'
  | 'READ'
  | 'RECOMMEND'
  | 'WRITE';

export type ApiKeyUpdateInput = {
  /** Origins whose web pages may use the key, e.g. `https://shop.example`. Replaces the key's list; `[]` allows none. */
  allowedOrigins: Array<Scalars['String']['input']>;
  prefix: Scalars['String']['input'];
};

export type ApiKeyUpdatePayload = {
  apiKey: Maybe<ApiKey>;
  userErrors: Array<UserError>;
};

/** A condition on one attribute; every operator given must hold. */
export type AttributeFilterInput = {
  eq: InputMaybe<Scalars['JSON']['input']>;
  gt: InputMaybe<Scalars['Float']['input']>;
  gte: InputMaybe<Scalars['Float']['input']>;
  in: InputMaybe<Array<Scalars['JSON']['input']>>;
  key: Scalars['String']['input'];
  lt: InputMaybe<Scalars['Float']['input']>;
  lte: InputMaybe<Scalars['Float']['input']>;
};

/** Multiply the score of the items the filter selects: factor > 1 boosts, < 1 buries, 0 removes them (e.g. attributes stock < 1, factor 0). */
export type BoostInput = {
  factor: Scalars['Float']['input'];
  filter: RecommendationFilterInput;
};

/** An A/B test of scenarios on one placement. */
export type Experiment = {
  clickTypes: Array<Scalars['String']['output']>;
  conversionTypes: Array<Scalars['String']['output']>;
  createdAt: Scalars['DateTime']['output'];
  id: Scalars['String']['output'];
  metric: ExperimentMetric;
  name: Scalars['String']['output'];
  /** The placement (scenario) it splits. */
  scenario: Scalars['String']['output'];
  significance: ExperimentSignificance;
  startedAt: Maybe<Scalars['DateTime']['output']>;
  status: ExperimentStatus;
  stoppedAt: Maybe<Scalars['DateTime']['output']>;
  variants: Array<ExperimentVariant>;
  /** The variant promoted, once it is. */
  winner: Maybe<Scalars['String']['output']>;
};

/** A new experiment (a draft until started). The shares may sum to less than 1: the other users get the placement's own scenario and are not counted. */
export type ExperimentCreateInput = {
  clickTypes: Array<Scalars['String']['input']>;
  conversionTypes: Array<Scalars['String']['input']>;
  metric: ExperimentMetric;
  name: Scalars['String']['input'];
  /** The placement to split. */
  scenario: Scalars['String']['input'];
  /** 2..10 variants; the first is the control. */
  variants: Array<ExperimentVariantInput>;
};

export type ExperimentIdInput = {
  id: Scalars['String']['input'];
};

/** What decides an experiment: CTR, the share of served lists with a click (an event of `clickTypes`); CONVERSION_RATE, with a conversion (`conversionTypes`). */
export type ExperimentMetric =
  | 'CONVERSION_RATE'
  | 'CTR';

export type ExperimentPayload = {
  experiment: Maybe<Experiment>;
  userErrors: Array<UserError>;
};

export type ExperimentPromoteInput = {
  id: Scalars['String']['input'];
  /** The name of the variant to promote. */
  variant: Scalars['String']['input'];
};

export type ExperimentSignificance = {
  comparisons: Array<VariantComparison>;
  control: Scalars['String']['output'];
  /** The variant with the highest rate. */
  leader: Maybe<Scalars['String']['output']>;
  metric: ExperimentMetric;
  /** Whether any treatment differs. */
  significant: Scalars['Boolean']['output'];
  /** Set while the counts are too small for the test to be trusted. */
  warning: Maybe<Scalars['String']['output']>;
};

export type ExperimentStatus =
  | 'DRAFT'
  | 'RUNNING'
  | 'STOPPED';

export type ExperimentVariant = {
  /** Its lists with at least one click event. */
  clicks: Scalars['Int']['output'];
  conversionRate: Scalars['Float']['output'];
  /** Its lists with a conversion event. */
  conversions: Scalars['Int']['output'];
  ctr: Scalars['Float']['output'];
  /** Lists it served. */
  exposures: Scalars['Int']['output'];
  /** Of the experiment's metric. */
  interval: RateInterval;
  name: Scalars['String']['output'];
  scenario: Scalars['String']['output'];
  /** Its share of the users, 0..1. */
  share: Scalars['Float']['output'];
};

export type ExperimentVariantInput = {
  name: Scalars['String']['input'];
  /** The scenario this variant serves. */
  scenario: Scalars['String']['input'];
  /** Its share of the users (0..1). */
  share: Scalars['Float']['input'];
};

/** One event: a user did something with an item. */
export type Interaction = Node & {
  id: Scalars['ID']['output'];
  idempotencyKey: Maybe<Scalars['String']['output']>;
  item: Maybe<Item>;
  metadata: Scalars['JSON']['output'];
  /** The served list this event answers (attribution). */
  recommendationId: Maybe<Scalars['String']['output']>;
  timestamp: Scalars['DateTime']['output'];
  type: Scalars['String']['output'];
  user: Maybe<User>;
  /** E.g. the rating given. */
  value: Maybe<Scalars['Float']['output']>;
  /** How much the event counts, after type rules. */
  weight: Scalars['Float']['output'];
};

export type InteractionConnection = {
  edges: Array<InteractionEdge>;
  /** The nodes of `edges`, without cursors. */
  nodes: Array<Interaction>;
  pageInfo: PageInfo;
};

export type InteractionEdge = {
  cursor: Scalars['String']['output'];
  node: Interaction;
};

/** An event as it is recorded, pushed to subscribers. */
export type InteractionEvent = {
  itemId: Scalars['String']['output'];
  timestamp: Scalars['DateTime']['output'];
  type: Scalars['String']['output'];
  userId: Scalars['String']['output'];
  value: Maybe<Scalars['Float']['output']>;
  weight: Scalars['Float']['output'];
};

/** Which events to follow; every list left out matches any. */
export type InteractionEventFilter = {
  itemIds: InputMaybe<Array<Scalars['String']['input']>>;
  types: InputMaybe<Array<Scalars['String']['input']>>;
  userIds: InputMaybe<Array<Scalars['String']['input']>>;
};

/** One event. Users are created on their first event. */
export type InteractionInput = {
  /** Resending an event with a stored key records nothing. */
  idempotencyKey: InputMaybe<Scalars['String']['input']>;
  itemId: Scalars['String']['input'];
  metadata: InputMaybe<Scalars['JSON']['input']>;
  /** The `recommendationId` of the list the user acted on: attributes the event to that list (and to its experiment's variant). */
  recommendationId: InputMaybe<Scalars['String']['input']>;
  /** When it happened (ISO 8601 with offset); default now. */
  timestamp: InputMaybe<Scalars['DateTime']['input']>;
  /** An interaction type name, e.g. `purchase`. */
  type: Scalars['String']['input'];
  userId: Scalars['String']['input'];
  /** E.g. a rating. */
  value: InputMaybe<Scalars['Float']['input']>;
  /** Overrides the weight the type gives. */
  weight: InputMaybe<Scalars['Float']['input']>;
};

export type InteractionRecordInput = {
  interaction: InteractionInput;
};

/** A kind of event and how much it says about taste. */
export type InteractionType = {
  description: Maybe<Scalars['String']['output']>;
  name: Scalars['String']['output'];
  neutralValue: Scalars['Float']['output'];
  polarity: Polarity;
  /** Weight is `weight * (value - neutralValue)`, e.g. ratings. */
  valueBased: Scalars['Boolean']['output'];
  /** Weight of one event; for value-based types, the factor on the value. */
  weight: Scalars['Float']['output'];
};

export type InteractionTypeUpsertInput = {
  description: InputMaybe<Scalars['String']['input']>;
  name: Scalars['String']['input'];
  neutralValue: Scalars['Float']['input'];
  valueBased: Scalars['Boolean']['input'];
  weight: Scalars['Float']['input'];
};

export type InteractionTypeUpsertPayload = {
  interactionType: Maybe<InteractionType>;
  userErrors: Array<UserError>;
};

export type InteractionsRecordInput = {
  interactions: Array<InteractionInput>;
};

export type InteractionsRecordPayload = {
  /** Events skipped because their idempotency key was already stored. */
  duplicateCount: Scalars['Int']['output'];
  /** Events stored by this call. */
  recordedCount: Scalars['Int']['output'];
  /** Events refused; the others were stored. */
  userErrors: Array<UserError>;
};

/** Something that can be recommended: a product, article, movie... */
export type Item = Node & {
  /** Any JSON object, e.g. price or brand. */
  attributes: Scalars['JSON']['output'];
  categories: Array<Scalars['String']['output']>;
  createdAt: Scalars['DateTime']['output'];
  /** Kind of item, e.g. `product`, `movie`. */
  entityType: Scalars['String']['output'];
  /** Hidden items are never recommended. */
  hidden: Scalars['Boolean']['output'];
  id: Scalars['ID']['output'];
  /** Your id of the item. */
  itemId: Scalars['String']['output'];
  tags: Array<Scalars['String']['output']>;
  /** Free text describing the item. */
  text: Maybe<Scalars['String']['output']>;
  title: Maybe<Scalars['String']['output']>;
  updatedAt: Scalars['DateTime']['output'];
};

export type ItemConnection = {
  edges: Array<ItemEdge>;
  /** The nodes of `edges`, without cursors. */
  nodes: Array<Item>;
  pageInfo: PageInfo;
};

export type ItemDeleteInput = {
  /** Your item id or the item's global id. */
  id: Scalars['String']['input'];
};

export type ItemDeletePayload = {
  deletedItemId: Maybe<Scalars['String']['output']>;
  userErrors: Array<UserError>;
};

export type ItemEdge = {
  cursor: Scalars['String']['output'];
  node: Item;
};

/** Which items to list; all conditions must hold. */
export type ItemFilterInput = {
  attributes: InputMaybe<Array<AttributeFilterInput>>;
  /** Items in at least one of these categories. */
  categories: InputMaybe<Array<Scalars['String']['input']>>;
  entityType: InputMaybe<Scalars['String']['input']>;
  excludeCategories: InputMaybe<Array<Scalars['String']['input']>>;
  /** Only hidden (true) or only visible (false) items. */
  hidden: InputMaybe<Scalars['Boolean']['input']>;
  /** Your item ids. */
  ids: InputMaybe<Array<Scalars['String']['input']>>;
  /** Items with at least one of these tags. */
  tags: InputMaybe<Array<Scalars['String']['input']>>;
};

/** An item to create or update. Omitted fields keep their value. */
export type ItemInput = {
  attributes: InputMaybe<Scalars['JSON']['input']>;
  categories: InputMaybe<Array<Scalars['String']['input']>>;
  /** Your own embedding of the item (optional). */
  embedding: InputMaybe<Scalars['Vector']['input']>;
  entityType: InputMaybe<Scalars['String']['input']>;
  hidden: InputMaybe<Scalars['Boolean']['input']>;
  /** Your id of the item. */
  id: Scalars['String']['input'];
  tags: InputMaybe<Array<Scalars['String']['input']>>;
  text: InputMaybe<Scalars['String']['input']>;
  title: InputMaybe<Scalars['String']['input']>;
};

export type ItemUpsertInput = {
  item: ItemInput;
};

export type ItemUpsertPayload = {
  created: Scalars['Boolean']['output'];
  item: Maybe<Item>;
  userErrors: Array<UserError>;
};

export type ItemsBulkUpsertInput = {
  /** Up to the configured batch size. */
  items: Array<ItemInput>;
};

export type ItemsBulkUpsertPayload = {
  createdCount: Scalars['Int']['output'];
  /** Items created or updated. */
  upsertedCount: Scalars['Int']['output'];
  /** Rows refused; the others were written. */
  userErrors: Array<UserError>;
};

export type ModelTrainInput = {
  /** Which to train; all when left out. */
  algorithms: InputMaybe<Array<Scalars['String']['input']>>;
  /** Training configs by algorithm name (weights are ignored). */
  configs: InputMaybe<Array<AlgorithmInput>>;
};

export type ModelTrainPayload = {
  models: Array<TrainedModel>;
  userErrors: Array<UserError>;
};

export type Mutation = {
  /** Create an API key for your tenant (admin scope). */
  apiKeyCreate: ApiKeyCreatePayload;
  /** Revoke one of your tenant's keys (admin scope). */
  apiKeyRevoke: ApiKeyRevokePayload;
  /** Change which web pages may use one of your tenant's keys (admin scope). */
  apiKeyUpdate: ApiKeyUpdatePayload;
  /** Define an experiment (admin scope); start it to run it. */
  experimentCreate: ExperimentPayload;
  /** Promote a variant (admin scope): its scenario's settings become a new version of the experiment's scenario, and the experiment stops. */
  experimentPromote: ExperimentPayload;
  /** Start a draft experiment (admin scope): from now on its scenario's requests are split among the variants. One experiment runs per scenario. */
  experimentStart: ExperimentPayload;
  /** Stop an experiment (admin scope); its counts stay. */
  experimentStop: ExperimentPayload;
  /** Record one event. */
  interactionRecord: InteractionsRecordPayload;
  /** Define an interaction type or change its weight. */
  interactionTypeUpsert: InteractionTypeUpsertPayload;
  /** Record many events in one transaction. */
  interactionsRecord: InteractionsRecordPayload;
  /** Delete an item and the events that refer to it. */
  itemDelete: ItemDeletePayload;
  /** Create an item or update the fields you send. */
  itemUpsert: ItemUpsertPayload;
  /** Create or update many items in one call. */
  itemsBulkUpsert: ItemsBulkUpsertPayload;
  /** Train models now and swap them in on every replica. */
  modelTrain: ModelTrainPayload;
  /** Delete a scenario (admin scope; its versions stay readable by number). Refused while an experiment runs on it or serves it. */
  scenarioDelete: ScenarioDeletePayload;
  /** Create a scenario, or save a new version of it (admin scope). Requests naming it use the new version at once, on every replica. */
  scenarioUpsert: ScenarioPayload;
  /** Delete a user and every event of theirs (GDPR erasure). */
  userDelete: UserDeletePayload;
  /** A signed, short-lived token that lets a browser-safe `recommend` key fetch recommendations for this one user (write scope: call it from your backend). */
  userTokenCreate: UserTokenCreatePayload;
  /** Create a user or update their attributes. */
  userUpsert: UserUpsertPayload;
  /** Register a webhook for your tenant (admin scope). Its signing secret is returned once. */
  webhookCreate: WebhookCreatePayload;
  /** Delete one of your tenant's webhooks and its deliveries (admin scope). */
  webhookDelete: WebhookDeletePayload;
  /** Send a dead or delivered delivery again: it is queued as new, its attempts reset (admin scope). */
  webhookDeliveryReplay: WebhookDeliveryReplayPayload;
  /** Change one of your tenant's webhooks (admin scope). */
  webhookUpdate: WebhookUpdatePayload;
};


export type MutationApiKeyCreateArgs = {
  input: ApiKeyCreateInput;
};


export type MutationApiKeyRevokeArgs = {
  input: ApiKeyRevokeInput;
};


export type MutationApiKeyUpdateArgs = {
  input: ApiKeyUpdateInput;
};


export type MutationExperimentCreateArgs = {
  input: ExperimentCreateInput;
};


export type MutationExperimentPromoteArgs = {
  input: ExperimentPromoteInput;
};


export type MutationExperimentStartArgs = {
  input: ExperimentIdInput;
};


export type MutationExperimentStopArgs = {
  input: ExperimentIdInput;
};


export type MutationInteractionRecordArgs = {
  input: InteractionRecordInput;
};


export type MutationInteractionTypeUpsertArgs = {
  input: InteractionTypeUpsertInput;
};


export type MutationInteractionsRecordArgs = {
  input: InteractionsRecordInput;
};


export type MutationItemDeleteArgs = {
  input: ItemDeleteInput;
};


export type MutationItemUpsertArgs = {
  input: ItemUpsertInput;
};


export type MutationItemsBulkUpsertArgs = {
  input: ItemsBulkUpsertInput;
};


export type MutationModelTrainArgs = {
  input: ModelTrainInput;
};


export type MutationScenarioDeleteArgs = {
  input: ScenarioDeleteInput;
};


export type MutationScenarioUpsertArgs = {
  input: ScenarioUpsertInput;
};


export type MutationUserDeleteArgs = {
  input: UserDeleteInput;
};


export type MutationUserTokenCreateArgs = {
  input: UserTokenCreateInput;
};


export type MutationUserUpsertArgs = {
  input: UserUpsertInput;
};


export type MutationWebhookCreateArgs = {
  input: WebhookCreateInput;
};


export type MutationWebhookDeleteArgs = {
  input: WebhookDeleteInput;
};


export type MutationWebhookDeliveryReplayArgs = {
  input: WebhookDeliveryReplayInput;
};


export type MutationWebhookUpdateArgs = {
  input: WebhookUpdateInput;
};

/** An object with a global id, fetchable with `node(id:)`. */
export type Node = {
  id: Scalars['ID']['output'];
};

export type PageInfo = {
  endCursor: Maybe<Scalars['String']['output']>;
  hasNextPage: Scalars['Boolean']['output'];
  hasPreviousPage: Scalars['Boolean']['output'];
  startCursor: Maybe<Scalars['String']['output']>;
};

export type Polarity =
  | 'BY_VALUE'
  | 'NEGATIVE'
  | 'POSITIVE';

/** A named blend of algorithms, usable like an algorithm. */
export type Preset = {
  name: Scalars['String']['output'];
  weights: Scalars['JSON']['output'];
};

/** A share of each list reserved for the items the filter selects: the best of them by the blend (else the most popular), at evenly spread positions, reason `promoted`. */
export type PromotedInput = {
  filter: RecommendationFilterInput;
  /** 0..1 of the list (at least one item). */
  share: Scalars['Float']['input'];
};

export type Query = {
  /** Installed algorithms and their trained models. */
  algorithms: Array<AlgorithmInfo>;
  /** Your tenant's API keys (admin scope). */
  apiKeys: Array<ApiKey>;
  /** Items most often used with this one in the same session (events of one user within RECOGRAPH_TOGETHER_MINUTES: bought together, watched together), counted online as events arrive; reason `together`, score = times seen together. */
  boughtTogether: Array<Recommendation>;
  /** One experiment (admin scope). */
  experiment: Maybe<Experiment>;
  /** Your tenant's experiments, newest first (admin scope). */
  experiments: Array<Experiment>;
  /** The kinds of events this tenant records. */
  interactionTypes: Array<InteractionType>;
  /** Events per time bucket over the last `hours` hours, oldest first, empty buckets included; the last bucket holds the present. Events are counted by when they arrived (were stored), not by their own `timestamp`: an import of old events counts when it ran. Buckets are aligned to multiples of `bucketMinutes` since the Unix epoch (UTC). At most 1,008 buckets (admin scope). */
  interactionVolume: Array<VolumeBucket>;
  /** One item by your id or its global id. */
  item: Maybe<Item>;
  /** Items in the order they were first stored. */
  items: ItemConnection;
  /** Any object by its global id. */
  node: Maybe<Node>;
  /** Named blends, e.g. `hybrid`. */
  presets: Array<Preset>;
  /** What this user should see next, best first. */
  recommendations: Array<Recommendation>;
  /** A scenario: its current version, or the one asked for (admin scope). */
  scenario: Maybe<Scenario>;
  /** Your tenant's scenarios, current versions (admin scope). */
  scenarios: Array<Scenario>;
  /** Items matching `text`: its words (full text, quotes and -exclusions included), titles resembling it (typos, unfinished words) and items close in meaning, fused by reciprocal rank. */
  search: Array<SearchHit>;
  /** Items like this one (also bought, similar content). */
  similarItems: Array<Recommendation>;
  /** Most popular items lately, by time-decayed event weight. */
  trending: Array<Recommendation>;
  /** One user by your id or their global id. */
  user: Maybe<User>;
  /** The delivery log of your tenant's webhooks, newest first (admin scope). */
  webhookDeliveries: WebhookDeliveryConnection;
  /** Your tenant's webhooks (admin scope). */
  webhooks: Array<Webhook>;
};


export type QueryBoughtTogetherArgs = {
  filter?: InputMaybe<RecommendationFilterInput>;
  first?: Scalars['Int']['input'];
  itemId: Scalars['String']['input'];
};


export type QueryExperimentArgs = {
  id: Scalars['String']['input'];
};


export type QueryInteractionVolumeArgs = {
  bucketMinutes?: Scalars['Int']['input'];
  hours?: Scalars['Int']['input'];
};


export type QueryItemArgs = {
  id: Scalars['ID']['input'];
};


export type QueryItemsArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  filter?: InputMaybe<ItemFilterInput>;
  first?: Scalars['Int']['input'];
};


export type QueryNodeArgs = {
  id: Scalars['ID']['input'];
};


export type QueryRecommendationsArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  algorithms?: InputMaybe<Array<AlgorithmInput>>;
  boosts?: InputMaybe<Array<BoostInput>>;
  calibration?: InputMaybe<Scalars['Float']['input']>;
  coldItems?: InputMaybe<Scalars['Float']['input']>;
  diversity?: InputMaybe<Scalars['Float']['input']>;
  excludeSeen?: InputMaybe<Scalars['Boolean']['input']>;
  explain?: Scalars['Boolean']['input'];
  filter?: InputMaybe<RecommendationFilterInput>;
  first?: Scalars['Int']['input'];
  maxPerCategory?: InputMaybe<Scalars['Int']['input']>;
  promoted?: InputMaybe<PromotedInput>;
  rotation?: InputMaybe<Scalars['Float']['input']>;
  scenario?: InputMaybe<Scalars['String']['input']>;
  userId: Scalars['String']['input'];
};


export type QueryScenarioArgs = {
  name: Scalars['String']['input'];
  version?: InputMaybe<Scalars['Int']['input']>;
};


export type QuerySearchArgs = {
  filter?: InputMaybe<RecommendationFilterInput>;
  first?: Scalars['Int']['input'];
  retrievers?: InputMaybe<Array<SearchRetriever>>;
  text: Scalars['String']['input'];
};


export type QuerySimilarItemsArgs = {
  algorithms?: InputMaybe<Array<AlgorithmInput>>;
  filter?: InputMaybe<RecommendationFilterInput>;
  first?: Scalars['Int']['input'];
  itemId: Scalars['String']['input'];
};


export type QueryTrendingArgs = {
  filter?: InputMaybe<RecommendationFilterInput>;
  first?: Scalars['Int']['input'];
  windowHours?: InputMaybe<Scalars['Float']['input']>;
};


export type QueryUserArgs = {
  id: Scalars['ID']['input'];
};


export type QueryWebhookDeliveriesArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  first?: Scalars['Int']['input'];
  status?: InputMaybe<WebhookDeliveryStatus>;
  webhookId?: InputMaybe<Scalars['ID']['input']>;
};

/** A 95% Wilson score interval of a rate. */
export type RateInterval = {
  high: Scalars['Float']['output'];
  low: Scalars['Float']['output'];
};

/** How one algorithm contributed to a recommendation. */
export type Reason = {
  algorithm: Scalars['String']['output'];
  /** The item of the user's history that caused it, if known. */
  becauseItem: Maybe<Item>;
  /** weight * score: its share of the total. */
  contribution: Scalars['Float']['output'];
  /** Its score for the item, scaled to [0, 1]. */
  score: Scalars['Float']['output'];
  /** The algorithm's weight in this request. */
  weight: Scalars['Float']['output'];
};

export type Recommendation = {
  /** Pass as `after` for the items that follow this one in the same list. */
  cursor: Maybe<Scalars['String']['output']>;
  /** The experiment that served this list, if one did. */
  experimentId: Maybe<Scalars['String']['output']>;
  item: Maybe<Item>;
  rank: Scalars['Int']['output'];
  reasons: Array<Reason>;
  /** The list this item was served from, when asked for or when an experiment served it: send it with the user's events to attribute them. The list is kept for its next pages when `cursor` is asked for too. */
  recommendationId: Maybe<Scalars['String']['output']>;
  /** Blended score: the sum of contributions. */
  score: Scalars['Float']['output'];
  /** The experiment's variant that served this list. */
  variant: Maybe<Scalars['String']['output']>;
};

/** Which items may be recommended. Hidden items never are. */
export type RecommendationFilterInput = {
  attributes: InputMaybe<Array<AttributeFilterInput>>;
  /** Only items in at least one of these categories. */
  categories: InputMaybe<Array<Scalars['String']['input']>>;
  entityType: InputMaybe<Scalars['String']['input']>;
  excludeCategories: InputMaybe<Array<Scalars['String']['input']>>;
  /** Your ids of items never to return. */
  excludeIds: InputMaybe<Array<Scalars['String']['input']>>;
  /** Only items with at least one of these tags. */
  tags: InputMaybe<Array<Scalars['String']['input']>>;
};

/** What made a user's recommendations change. */
export type RecommendationsCause =
  | 'CATALOGUE'
  | 'EVENTS'
  | 'INITIAL'
  | 'MODEL';

/** A user's new list (only sent when it differs from the last). */
export type RecommendationsUpdate = {
  at: Scalars['DateTime']['output'];
  /** Why it was computed again (several when a burst was coalesced). */
  causes: Array<RecommendationsCause>;
  recommendations: Array<Recommendation>;
};

/** A named, versioned preset of a placement. */
export type Scenario = {
  /** When this version was saved. */
  createdAt: Scalars['DateTime']['output'];
  /** Its settings, as given. */
  definition: Scalars['JSON']['output'];
  description: Maybe<Scalars['String']['output']>;
  name: Scalars['String']['output'];
  /** 1 for the first, +1 with every change. */
  version: Scalars['Int']['output'];
};

/** One algorithm or preset of a scenario, with its weight. */
export type ScenarioAlgorithmInput = {
  config: InputMaybe<Scalars['JSON']['input']>;
  name: Scalars['String']['input'];
  weight: Scalars['Float']['input'];
};

export type ScenarioDeleteInput = {
  name: Scalars['String']['input'];
};

export type ScenarioDeletePayload = {
  deletedName: Maybe<Scalars['String']['output']>;
  userErrors: Array<UserError>;
};

export type ScenarioPayload = {
  scenario: Maybe<Scenario>;
  userErrors: Array<UserError>;
};

/** A scenario's new version: every field given replaces the old. */
export type ScenarioUpsertInput = {
  algorithms: InputMaybe<Array<ScenarioAlgorithmInput>>;
  boosts: InputMaybe<Array<BoostInput>>;
  calibration: InputMaybe<Scalars['Float']['input']>;
  /** 0..1: share of each list for the best cold items by content (items with fewer than RECOGRAPH_COLD_ITEM_EVENTS events), reason `cold_item`. */
  coldItems: InputMaybe<Scalars['Float']['input']>;
  description: InputMaybe<Scalars['String']['input']>;
  diversity: InputMaybe<Scalars['Float']['input']>;
  excludeSeen: InputMaybe<Scalars['Boolean']['input']>;
  filter: InputMaybe<RecommendationFilterInput>;
  maxPerCategory: InputMaybe<Scalars['Int']['input']>;
  /** Letters, digits, `_`, `.`, `-`; 1..100. */
  name: Scalars['String']['input'];
  promoted: InputMaybe<PromotedInput>;
  /** 0..1: each earlier showing of an item to the user (within RECOGRAPH_IMPRESSION_SECONDS) multiplies its score by 1 - rotation. */
  rotation: InputMaybe<Scalars['Float']['input']>;
};

export type SearchHit = {
  item: Maybe<Item>;
  /** The retrievers that found the item, with its rank in each. */
  matches: Array<SearchMatch>;
  /** Relevance, higher first: 2 + x when the title is the text, 1 + x when the item holds every word of it, else x; x in (0, 1] fuses the retrievers' ranks (reciprocal rank fusion, 1 = first in every retriever that ran). */
  score: Scalars['Float']['output'];
};

/** How one retriever found a search hit. */
export type SearchMatch = {
  /** The hit's rank in that retriever (1 = best). */
  rank: Scalars['Int']['output'];
  retriever: SearchRetriever;
  /** That retriever's own score (text rank, trigram or cosine similarity). */
  score: Scalars['Float']['output'];
};

/** A way `search` finds items. FULLTEXT: the text's words in titles, then tags and categories, then text; TRIGRAM: titles resembling the text (typos, unfinished words); VECTOR: items closest in meaning (the tenant's content vectors). */
export type SearchRetriever =
  | 'FULLTEXT'
  | 'TRIGRAM'
  | 'VECTOR';

export type Subscription = {
  /** Events as they are recorded, on any replica, optionally only of some users, items or types. A browser-safe `recommend` key with a user token may follow its own user's events (to refresh that user's recommendations). */
  interactionRecorded: InteractionEvent;
  /** Each new model version of your tenant, trained on any replica or by the trainer: its algorithm, size, training time and what training measured. */
  modelTrained: TrainedModel;
  /** A user's recommendations: the current list first, then a new one whenever their events, a new model or a catalogue change (an item hidden, deleted or edited) changed it, on any replica. Bursts are coalesced; an unchanged list is not sent. A browser-safe `recommend` key may follow its user token's user. */
  recommendationsUpdated: RecommendationsUpdate;
};


export type SubscriptionInteractionRecordedArgs = {
  filter?: InputMaybe<InteractionEventFilter>;
  userId?: InputMaybe<Scalars['String']['input']>;
};


export type SubscriptionModelTrainedArgs = {
  algorithm?: InputMaybe<Scalars['String']['input']>;
};


export type SubscriptionRecommendationsUpdatedArgs = {
  algorithms?: InputMaybe<Array<AlgorithmInput>>;
  calibration?: InputMaybe<Scalars['Float']['input']>;
  diversity?: InputMaybe<Scalars['Float']['input']>;
  explain?: Scalars['Boolean']['input'];
  filter?: InputMaybe<RecommendationFilterInput>;
  first?: Scalars['Int']['input'];
  userId: Scalars['String']['input'];
};

export type TrainedModel = {
  algorithm: Scalars['String']['output'];
  events: Scalars['Int']['output'];
  items: Scalars['Int']['output'];
  /** What training chose and measured, e.g. the collaborative filter's automatic selection (`autotune`: settings chosen, validation Recall@20). */
  report: Scalars['JSON']['output'];
  seconds: Scalars['Float']['output'];
  users: Scalars['Int']['output'];
  version: Scalars['Int']['output'];
};

/** Someone whose events you record and who gets recommendations. */
export type User = Node & {
  attributes: Scalars['JSON']['output'];
  createdAt: Scalars['DateTime']['output'];
  id: Scalars['ID']['output'];
  /** The user's events, newest first. */
  interactions: InteractionConnection;
  updatedAt: Scalars['DateTime']['output'];
  /** Your id of the user. */
  userId: Scalars['String']['output'];
};


/** Someone whose events you record and who gets recommendations. */
export type UserInteractionsArgs = {
  after?: InputMaybe<Scalars['String']['input']>;
  first?: Scalars['Int']['input'];
};

export type UserDeleteInput = {
  /** Your user id or the user's global id. */
  id: Scalars['String']['input'];
};

export type UserDeletePayload = {
  deletedUserId: Maybe<Scalars['String']['output']>;
  userErrors: Array<UserError>;
};

/** An input the server refused, and which field it was. */
export type UserError = {
  code: UserErrorCode;
  /** Path to the input field, e.g. ["input", "items", "3", "id"]. */
  field: Maybe<Array<Scalars['String']['output']>>;
  message: Scalars['String']['output'];
};

/** Why an input was refused. */
export type UserErrorCode =
  | 'BLANK'
  | 'BUSY'
  | 'CONFLICT'
  | 'DIMENSION_MISMATCH'
  | 'FORBIDDEN'
  | 'INVALID'
  | 'INVALID_CONFIG'
  | 'INVALID_WEIGHT'
  | 'IN_FUTURE'
  | 'NOT_FINITE'
  | 'NOT_FOUND'
  | 'NOT_TRAINED'
  | 'PAGE_SIZE_EXCEEDED'
  | 'TOO_DEEP'
  | 'TOO_LARGE'
  | 'TOO_LONG'
  | 'TOO_MANY'
  | 'UNKNOWN_ALGORITHM'
  | 'UNKNOWN_TYPE';

export type UserInput = {
  attributes: InputMaybe<Scalars['JSON']['input']>;
  /** Your id of the user. */
  id: Scalars['String']['input'];
};

export type UserTokenCreateInput = {
  /** How long the token is valid (60 s to 30 days). */
  ttlSeconds: Scalars['Int']['input'];
  /** The user the token lets a browser key act for. */
  userId: Scalars['String']['input'];
};

export type UserTokenCreatePayload = {
  expiresAt: Maybe<Scalars['DateTime']['output']>;
  /** Send it as `X-User-Token` (or `userToken` in connection_init). */
  token: Maybe<Scalars['String']['output']>;
  userErrors: Array<UserError>;
};

export type UserUpsertInput = {
  user: UserInput;
};

export type UserUpsertPayload = {
  created: Scalars['Boolean']['output'];
  user: Maybe<User>;
  userErrors: Array<UserError>;
};

/** A treatment against the control (the first variant). */
export type VariantComparison = {
  /** Relative change of the metric against the control (null if it is 0). */
  lift: Maybe<Scalars['Float']['output']>;
  /** Two-sided, two-proportion z-test. */
  pValue: Scalars['Float']['output'];
  /** p below 0.05 divided by the number of treatments (Bonferroni). */
  significant: Scalars['Boolean']['output'];
  variant: Scalars['String']['output'];
  zScore: Scalars['Float']['output'];
};

/** Events of one time bucket. */
export type VolumeBucket = {
  /** Events that arrived in the bucket. */
  events: Scalars['Int']['output'];
  /** When the bucket begins (UTC). */
  start: Scalars['DateTime']['output'];
};

/** An endpoint of your tenant that receives signed event POSTs. */
export type Webhook = {
  /** Inactive webhooks get no new deliveries; pending ones wait for them. */
  active: Scalars['Boolean']['output'];
  createdAt: Scalars['DateTime']['output'];
  description: Maybe<Scalars['String']['output']>;
  id: Scalars['ID']['output'];
  kinds: Array<WebhookKind>;
  updatedAt: Scalars['DateTime']['output'];
  url: Scalars['String']['output'];
  /** Users whose RECOMMENDATIONS_CHANGED this webhook receives. */
  watchUserIds: Array<Scalars['String']['output']>;
};

export type WebhookCreateInput = {
  description: InputMaybe<Scalars['String']['input']>;
  kinds: Array<WebhookKind>;
  /** An http(s) URL on a public address (see RECOGRAPH_WEBHOOK_ALLOW_PRIVATE). */
  url: Scalars['String']['input'];
  /** Users whose RECOMMENDATIONS_CHANGED the webhook receives. */
  watchUserIds: Array<Scalars['String']['input']>;
};

export type WebhookCreatePayload = {
  /** Signs every delivery (`Recograph-Signature`). Store it now; it cannot be shown again. */
  secret: Maybe<Scalars['String']['output']>;
  userErrors: Array<UserError>;
  webhook: Maybe<Webhook>;
};

export type WebhookDeleteInput = {
  id: Scalars['ID']['input'];
};

export type WebhookDeletePayload = {
  deletedId: Maybe<Scalars['ID']['output']>;
  userErrors: Array<UserError>;
};

/** One message to one webhook, and how sending it went. */
export type WebhookDelivery = {
  attempts: Scalars['Int']['output'];
  createdAt: Scalars['DateTime']['output'];
  deliveredAt: Maybe<Scalars['DateTime']['output']>;
  /** Sent as the `Recograph-Delivery` header. */
  id: Scalars['ID']['output'];
  kind: WebhookKind;
  /** Why the last attempt failed. */
  lastError: Maybe<Scalars['String']['output']>;
  /** HTTP status of the last attempt. */
  lastStatus: Maybe<Scalars['Int']['output']>;
  /** When the next attempt is due (pending deliveries only). */
  nextAttemptAt: Maybe<Scalars['DateTime']['output']>;
  /** The `data` of the POSTed body. */
  payload: Scalars['JSON']['output'];
  status: WebhookDeliveryStatus;
  webhookId: Scalars['ID']['output'];
};

export type WebhookDeliveryConnection = {
  edges: Array<WebhookDeliveryEdge>;
  /** The nodes of `edges`, without cursors. */
  nodes: Array<WebhookDelivery>;
  pageInfo: PageInfo;
};

export type WebhookDeliveryEdge = {
  cursor: Scalars['String']['output'];
  node: WebhookDelivery;
};

export type WebhookDeliveryReplayInput = {
  deliveryId: Scalars['ID']['input'];
};

export type WebhookDeliveryReplayPayload = {
  delivery: Maybe<WebhookDelivery>;
  userErrors: Array<UserError>;
};

/** Where a delivery stands. */
export type WebhookDeliveryStatus =
  /** Every attempt failed; `webhookDeliveryReplay` queues it again. */
  | 'DEAD'
  /** The endpoint answered 2xx. */
  | 'DELIVERED'
  /** Waiting for its (next) attempt. */
  | 'PENDING';

/** What a webhook is told about. */
export type WebhookKind =
  /** Events were stored (up to 1,000 per delivery). */
  | 'EVENTS_RECORDED'
  /** A new model version was trained and stored. */
  | 'MODEL_TRAINED'
  /** The recommendations of a watched user (`watchUserIds`) changed. */
  | 'RECOMMENDATIONS_CHANGED';

export type WebhookUpdateInput = {
  /** Pause or resume. */
  active: InputMaybe<Scalars['Boolean']['input']>;
  /** Left out: unchanged; null: removed. */
  description: InputMaybe<Scalars['String']['input']>;
  id: Scalars['ID']['input'];
  /** Replaces the kinds; left out or null: unchanged. */
  kinds: InputMaybe<Array<WebhookKind>>;
  /** Left out or null: unchanged. */
  url: InputMaybe<Scalars['String']['input']>;
  /** Replaces the watched users; left out or null: unchanged. */
  watchUserIds: InputMaybe<Array<Scalars['String']['input']>>;
};

export type WebhookUpdatePayload = {
  userErrors: Array<UserError>;
  webhook: Maybe<Webhook>;
};

export type RecommendationsForUserQueryVariables = Exact<{
  userId: Scalars['String']['input'];
  first: Scalars['Int']['input'];
}>;


export type RecommendationsForUserQuery = { recommendations: Array<{ rank: number, score: number, item: { itemId: string, title: string | null } | null, reasons: Array<{ algorithm: string, contribution: number, becauseItem: { itemId: string, title: string | null } | null }> }> };

export type LiveRecommendationsSubscriptionVariables = Exact<{
  userId: Scalars['String']['input'];
  first: Scalars['Int']['input'];
}>;


export type LiveRecommendationsSubscription = { recommendationsUpdated: { causes: Array<RecommendationsCause>, recommendations: Array<{ rank: number, score: number, item: { itemId: string, title: string | null } | null, reasons: Array<{ algorithm: string, contribution: number, becauseItem: { itemId: string, title: string | null } | null }> }> } };
