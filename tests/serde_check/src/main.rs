//! Reads run.json texts as pacha 0.2.5's `ExperimentRun`: the types of the seed
//! (shared/seed/experiment.rs) and of pacha's recipe module, derived as pacha derives them.
//! stdin: a JSON array of documents; stdout: a JSON array, null where a document loads,
//! else serde's error.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunId(Uuid);
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus { Pending, Running, Completed, Failed, Cancelled }
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HardwareInfo {
    #[serde(skip_serializing_if = "Option::is_none")] pub cpu_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")] pub cpu_cores: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")] pub ram_gb: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")] pub gpu_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")] pub gpu_count: Option<usize>,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricRecord { pub name: String, pub value: f64, pub step: u64, pub timestamp: DateTime<Utc> }
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactReference { pub artifact_type: String, pub name: String, pub content_hash: String }
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecipeVersion { pub major: u32, pub minor: u32, pub patch: u32 }
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecipeReference { pub name: String, pub version: RecipeVersion }
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hyperparameters {
    pub learning_rate: f64, pub batch_size: usize, pub epochs: usize,
    #[serde(default)] pub weight_decay: f64,
    #[serde(skip_serializing_if = "Option::is_none")] pub max_grad_norm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")] pub warmup_steps: Option<usize>,
    #[serde(default)] pub custom: HashMap<String, HyperparamValue>,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HyperparamValue { Float(f64), Int(i64), Bool(bool), String(String), List(Vec<HyperparamValue>) }
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentRun {
    pub run_id: RunId,
    #[serde(skip_serializing_if = "Option::is_none")] pub recipe: Option<RecipeReference>,
    pub hyperparameters: Hyperparameters,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")] pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub hardware: HardwareInfo,
    #[serde(default)] pub metrics: Vec<MetricRecord>,
    #[serde(default)] pub artifacts: Vec<ArtifactReference>,
    #[serde(skip_serializing_if = "Option::is_none")] pub log_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")] pub git_commit: Option<String>,
    #[serde(default)] pub git_dirty: bool,
    #[serde(skip_serializing_if = "Option::is_none")] pub error_message: Option<String>,
    #[serde(default)] pub extra: HashMap<String, serde_json::Value>,
}
fn main() {
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input).unwrap();
    let texts: Vec<String> = serde_json::from_str(&input).unwrap();
    let verdicts: Vec<Option<String>> = texts
        .iter()
        .map(|text| serde_json::from_str::<ExperimentRun>(text).err().map(|e| e.to_string()))
        .collect();
    println!("{}", serde_json::to_string(&verdicts).unwrap());
}
