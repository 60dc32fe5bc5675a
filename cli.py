"""The command line of the SAR land-cover mapper (``python cli.py --help`` lists every command).

python cli.py pipeline --config experiments/demo.yaml       # the whole method, stage by stage
python cli.py fit --config experiments/demo_sar.yaml        # LightningCLI: fit/validate/test/predict
python cli.py map --ckpt_path CKPT --input SCENE.tif --output MAP.tif   # map a SAR scene of any size
"""

from sar_landcover.commands import main

if __name__ == "__main__":
    main()
